-- The demo account and its welcome article, so a fresh install has
-- something to show. The password is `conduit-demo`, stored only as an
-- argon2id PHC string (m=19456 KiB, t=2, p=1: the OWASP minimum).
-- Production refuses the demo login unless CONDUIT_ALLOW_DEMO_USER=true.
INSERT INTO users (username, email, password_hash, bio)
VALUES (
    'demo',
    'demo@example.com',
    '$argon2id$v=19$m=19456,t=2,p=1$0THj0R0Mamu6Kw8ile6lTg$eubsFb1L6bN961MpRiqjp0LByYCBjXbx6/4gOao0rmA',
    'The demo account of a fresh Conduit install.'
);

INSERT INTO articles (author_id, slug, title, description, body)
SELECT id,
       'welcome-to-conduit',
       'Welcome to Conduit',
       'What this install is and how to start using it',
       'Conduit is the RealWorld API on actix-web, diesel-async and PostgreSQL. Sign up, follow authors, write articles and comment on them.'
FROM users
WHERE username = 'demo';

INSERT INTO tags (name) VALUES ('welcome'), ('conduit');

INSERT INTO article_tags (article_id, tag_id)
SELECT articles.id, tags.id
FROM articles, tags
WHERE articles.slug = 'welcome-to-conduit'
  AND tags.name IN ('welcome', 'conduit');
