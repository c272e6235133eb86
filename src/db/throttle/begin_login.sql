-- One login attempt against its address, pair and account, in that lock
-- order (db/throttle.rs, BEGIN_LOGIN, says how each row decides).
WITH address AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    VALUES ($3, 1, now() + $4 * interval '1 millisecond',
            CASE WHEN 1 < $7 THEN '-infinity'::timestamptz
                 ELSE now() + least(1000, $8) * interval '1 millisecond' END)
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = CASE WHEN t.window_ends_at <= now() THEN excluded.next_at
                       WHEN t.attempts + 1 < $7 THEN '-infinity'::timestamptz
                       ELSE now() + least(power(2::float8, least(t.attempts + 1 - $7, 40)) * 1000, $8)
                                    * interval '1 millisecond' END
    WHERE t.window_ends_at <= now() OR t.next_at <= now()
    RETURNING t.key
),
spacing AS (
    SELECT coalesce((
        SELECT CASE WHEN a.attempts + 1 < $6 THEN interval '0'
                    ELSE least(power(2::float8, least(a.attempts + 1 - $6, 40)) * 1000, $8)
                         * interval '1 millisecond' END
        FROM throttle_counters a
        WHERE a.key = $2 AND a.window_ends_at > now()
    ), interval '0') AS delay
),
pair AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    SELECT $1, 1, now() + $4 * interval '1 millisecond',
           CASE WHEN spacing.delay > interval '0' THEN now() + spacing.delay
                ELSE '-infinity'::timestamptz END
    FROM address, spacing
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END,
        next_at = excluded.next_at
    WHERE t.window_ends_at <= now() OR (t.attempts < $5 AND t.next_at <= now())
    RETURNING t.key
),
account AS (
    INSERT INTO throttle_counters AS t (key, attempts, window_ends_at, next_at)
    SELECT $2, 1, now() + $4 * interval '1 millisecond', '-infinity'::timestamptz
    FROM pair
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_ends_at <= now() THEN 1 ELSE t.attempts + 1 END,
        window_ends_at = CASE WHEN t.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE t.window_ends_at END
    RETURNING t.key
)
SELECT
    EXISTS (SELECT 1 FROM account) AS admitted,
    EXISTS (SELECT 1 FROM address) AS address_admitted
