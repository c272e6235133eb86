-- $1 ids, $2 folded usernames, $3 username skeletons, $4 folded emails
-- (a NULL where an earlier account of the run took that key), $5 the
-- version of the rules. A key another account holds is left NULL: the
-- older rules that let both in stay answered for, and nothing is renamed.
UPDATE users AS u SET
    username_folded = CASE WHEN EXISTS (
        SELECT 1 FROM users AS o WHERE o.username_folded = k.folded AND o.id <> u.id)
        THEN NULL ELSE k.folded END,
    username_skeleton = CASE WHEN EXISTS (
        SELECT 1 FROM users AS o WHERE o.username_skeleton = k.skeleton AND o.id <> u.id)
        THEN NULL ELSE k.skeleton END,
    email_folded = CASE WHEN EXISTS (
        SELECT 1 FROM users AS o WHERE o.email_folded = k.email AND o.id <> u.id)
        THEN NULL ELSE k.email END,
    identity_keys_version = $5
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS k (id, folded, skeleton, email)
WHERE u.id = k.id AND u.identity_keys_version < $5
RETURNING u.id,
    u.username_folded IS NOT NULL AS username_folded,
    u.username_skeleton IS NOT NULL AS username_skeleton,
    u.email_folded IS NOT NULL AS email_folded
