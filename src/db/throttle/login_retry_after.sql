-- How long a refused login waits (db/throttle.rs, begin_login), read after
-- BEGIN_LOGIN in a statement of its own: that one's snapshot can predate
-- the concurrent attempt that moved the wait. $1 pair, $2 address, $3 pair budget.
-- The clock, not now(): the statement may run in a transaction that
-- began before it waited for the row.
SELECT ceil(extract(epoch FROM max(
           CASE WHEN r.key = $1 AND r.attempts >= $3 THEN r.window_ends_at
                ELSE greatest(r.next_at, clock_timestamp()) END
       ) - clock_timestamp()) * 1000)::bigint AS retry_after_ms
FROM throttle_counters r
WHERE r.key IN ($1, $2) AND r.window_ends_at > clock_timestamp()
