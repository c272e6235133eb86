-- One attempt against a budget with backoff (db/throttle.rs,
-- BEGIN_WITH_BACKOFF).
WITH counted AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    VALUES ($1, 1, now() + $2 * interval '1 millisecond',
            CASE WHEN 1 < $3 THEN '-infinity'::timestamptz
                 ELSE now() + least(1000, $4) * interval '1 millisecond' END)
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = CASE WHEN t.window_ends_at <= now() THEN excluded.next_at
                       WHEN t.attempts + 1 < $3 THEN '-infinity'::timestamptz
                       ELSE now() + least(power(2::float8, least(t.attempts + 1 - $3, 40)) * 1000, $4)
                                    * interval '1 millisecond' END
    WHERE t.window_ends_at <= now() OR t.next_at <= now()
    RETURNING t.key
)
SELECT
    EXISTS (SELECT 1 FROM counted) AS admitted
