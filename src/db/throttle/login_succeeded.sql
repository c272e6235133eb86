-- A login with the right password takes its count back, in BEGIN_LOGIN's
-- lock order: address, pair (deleted: its owner proved themselves from
-- there), account (db/throttle.rs, login_succeeded).
WITH address AS (
    UPDATE throttle_counters SET attempts = attempts - 1
    WHERE key = $3 AND attempts > 0 AND window_ends_at > now()
    RETURNING key
),
pair AS (
    DELETE FROM throttle_counters
    WHERE key = $1 AND (SELECT count(*) FROM address) >= 0
    RETURNING key
)
UPDATE throttle_counters SET attempts = attempts - 1
WHERE key = $2 AND attempts > 0 AND window_ends_at > now()
  AND (SELECT count(*) FROM pair) >= 0
