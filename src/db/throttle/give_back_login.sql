-- A login that could not be checked takes its count back, in BEGIN_LOGIN's
-- lock order: address, pair, account (db/throttle.rs, give_back_login),
-- and the wait it set: it was admitted, so the wait before it had passed.
WITH address AS (
    UPDATE throttle_counters SET attempts = attempts - 1, next_at = least(next_at, now())
    WHERE key = $3 AND attempts > 0 AND window_ends_at > now()
    RETURNING key
),
pair AS (
    UPDATE throttle_counters SET attempts = attempts - 1, next_at = least(next_at, now())
    WHERE key = $1 AND attempts > 0 AND window_ends_at > now()
      AND (SELECT count(*) FROM address) >= 0
    RETURNING key
)
UPDATE throttle_counters SET attempts = attempts - 1, next_at = least(next_at, now())
WHERE key = $2 AND attempts > 0 AND window_ends_at > now()
  AND (SELECT count(*) FROM pair) >= 0
