-- Removes exactly what up.sql created, dependents first.
DROP TABLE comments;
DROP TABLE favorites;
DROP TABLE article_tags;
DROP TABLE tags;
DROP TABLE articles;
DROP TABLE follows;
DROP TABLE sessions;
DROP TABLE users;
DROP FUNCTION conduit_set_updated_at();
