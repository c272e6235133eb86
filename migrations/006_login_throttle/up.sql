-- Throttling state shared by every replica (login failures per account,
-- per address and per (account, address); registrations per address):
-- one row per key, counted by single INSERT ... ON CONFLICT statements, so
-- it works through PgBouncer in transaction pooling and needs no lock of
-- its own.
--
-- UNLOGGED: no WAL for a table written on every failed login. A crash of
-- PostgreSQL empties it (every budget starts afresh), and it is not
-- replicated to standbys; both are acceptable for counters that live for
-- one window.
--
-- A row whose window has ended counts as absent (the next attempt starts
-- a new window), so the purge (db::throttle::purge_expired, off the
-- request path, in batches) deletes by window_ends_at.
CREATE UNLOGGED TABLE throttle_counters (
    -- 'login-pair:<address> <email>', 'login-account:<email>',
    -- 'login-address:<address>', 'register-address:<address>'.
    key text PRIMARY KEY,
    -- Attempts counted in the current window, those in flight included.
    attempts bigint NOT NULL CHECK (attempts >= 0),
    window_ends_at timestamptz NOT NULL,
    -- Backoff: no attempt of this key is let through before then.
    next_at timestamptz NOT NULL
);

CREATE INDEX throttle_counters_window_ends_at ON throttle_counters (window_ends_at);
