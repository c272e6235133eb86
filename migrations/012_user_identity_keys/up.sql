-- What decides that two accounts would be one, computed by the server in
-- Rust (src/domain/identity.rs) rather than by lower(), which follows the
-- database's LC_CTYPE (under C it folds only ASCII: Émile and émile, or
-- ÖZIL@ and özil@, were two accounts):
--   username_folded   the name's compatibility caseless form (ＤＥＭＯ = demo),
--   username_skeleton what the name looks like (dеmo in Cyrillic = demo),
--   email_folded      the email's compatibility caseless form.
-- Each is unique; NULL is not compared, so rows the server has not keyed
-- yet are allowed.
--
-- The keys cannot be computed here (PostgreSQL has no case folding that
-- ignores the locale, nor the TR39 confusables). Rows written before this
-- migration, or later by a server that predates it, keep NULL keys and
-- identity_keys_version 0; every boot keys them (db::identity_keys)
-- before it serves, and so does a later version of the rules whose number
-- is above theirs. The unique indexes on lower() stay for those older
-- servers, which know no other rule.
ALTER TABLE users
    ADD COLUMN username_folded TEXT,
    ADD COLUMN username_skeleton TEXT,
    ADD COLUMN email_folded TEXT,
    ADD COLUMN identity_keys_version BIGINT NOT NULL DEFAULT 0;

-- Built in the ALTER's transaction, over columns that are NULL in every
-- row: nothing to sort, and the table is locked by the ALTER anyway.
CREATE UNIQUE INDEX users_username_folded_key ON users (username_folded);
CREATE UNIQUE INDEX users_username_skeleton_key ON users (username_skeleton);
CREATE UNIQUE INDEX users_email_folded_key ON users (email_folded);
