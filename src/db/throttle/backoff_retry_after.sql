-- How long a refused attempt against a budget with backoff waits
-- (db/throttle.rs, begin_with_backoff), read again after
-- BEGIN_WITH_BACKOFF for the same reason as login_retry_after.sql. $1 key.
-- The clock, not now(): the statement may run in a transaction that
-- began before it waited for the row.
SELECT (
    SELECT ceil(extract(epoch FROM greatest(r.next_at, clock_timestamp()) - clock_timestamp()) * 1000)::bigint
    FROM throttle_counters r
    WHERE r.key = $1 AND r.window_ends_at > clock_timestamp()
) AS retry_after_ms
