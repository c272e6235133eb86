-- The indexes go with their columns.
ALTER TABLE users
    DROP COLUMN identity_keys_version,
    DROP COLUMN email_folded,
    DROP COLUMN username_skeleton,
    DROP COLUMN username_folded;
