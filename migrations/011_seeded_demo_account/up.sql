-- The account migration 002 seeded, by its id: production refuses its
-- login and warns at boot while it exists. Its email, which 002 seeded
-- and which the account can change through the API, cannot identify it:
-- renamed, it would slip past both. Nothing in the API writes this table.
--
-- Found by its seeded password hash first (that exact PHC string, with its
-- fixed salt, is what only 002 wrote, and it means the public password
-- still opens the account), else by the seeded email. When neither is
-- found, the account is gone, or has changed both and its password is no
-- longer the public one.
CREATE TABLE seeded_demo_account (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE
);

INSERT INTO seeded_demo_account (user_id)
SELECT id
FROM users
WHERE password_hash = '$argon2id$v=19$m=19456,t=2,p=1$0THj0R0Mamu6Kw8ile6lTg$eubsFb1L6bN961MpRiqjp0LByYCBjXbx6/4gOao0rmA'
   OR lower(email) = 'demo@example.com'
ORDER BY password_hash = '$argon2id$v=19$m=19456,t=2,p=1$0THj0R0Mamu6Kw8ile6lTg$eubsFb1L6bN961MpRiqjp0LByYCBjXbx6/4gOao0rmA' DESC, id
LIMIT 1;
