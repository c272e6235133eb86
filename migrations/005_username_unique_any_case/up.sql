-- Usernames are unique whatever their case, as emails already are: Demo
-- and demo are one name. Existing accounts that differ only in case are
-- never deleted or renamed here: the migration stops, listing them, so an
-- operator can decide (rename all but one of each group, then boot again).
DO $$
DECLARE
    conflicts TEXT;
BEGIN
    SELECT string_agg(names, '; ') INTO conflicts
    FROM (
        SELECT string_agg(format('%s (id %s)', username, id), ', ' ORDER BY id) AS names
        FROM users
        GROUP BY lower(username)
        HAVING count(*) > 1
    ) AS groups;
    IF conflicts IS NOT NULL THEN
        RAISE EXCEPTION 'usernames that differ only in case: %', conflicts
            USING HINT = 'rename all but one of each group, then migrate again';
    END IF;
END;
$$;

-- In the same transaction as the check, so no pair can slip in between.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
