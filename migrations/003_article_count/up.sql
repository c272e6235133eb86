-- The number of articles, kept as the articles come and go, so that the
-- unfiltered list's articlesCount does not count every row on every page
-- (at 100,000 articles that count alone was 6 to 9 ms of database time per
-- request; `make bench` measures the list).
--
-- The count is split over 16 rows, each transaction adding to the row of
-- its own backend (pg_backend_pid() % 16): concurrent creations by
-- different connections rarely wait for one another's commit, as they
-- would on a single counter row. Readers add the 16 rows up.
CREATE TABLE article_count_shards (
    shard    SMALLINT PRIMARY KEY,
    articles BIGINT NOT NULL,
    CONSTRAINT article_count_shards_shard_range CHECK (shard BETWEEN 0 AND 15)
);
INSERT INTO article_count_shards (shard, articles)
SELECT shard, CASE WHEN shard = 0 THEN (SELECT count(*) FROM articles) ELSE 0 END
FROM generate_series(0, 15) AS shard;

-- Statement-level, with transition tables: one update per statement, however
-- many rows it inserts or deletes (including deletions cascading from users).
CREATE FUNCTION conduit_count_inserted_articles() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_count_shards
    SET articles = articles + (SELECT count(*) FROM inserted)
    WHERE shard = pg_backend_pid() % 16;
    RETURN NULL;
END;
$$;

CREATE FUNCTION conduit_count_deleted_articles() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_count_shards
    SET articles = articles - (SELECT count(*) FROM deleted)
    WHERE shard = pg_backend_pid() % 16;
    RETURN NULL;
END;
$$;

CREATE TRIGGER articles_counted_on_insert AFTER INSERT ON articles
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION conduit_count_inserted_articles();
CREATE TRIGGER articles_counted_on_delete AFTER DELETE ON articles
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION conduit_count_deleted_articles();

-- TRUNCATE bypasses row and statement triggers of DELETE: start again at 0.
CREATE FUNCTION conduit_reset_article_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_count_shards SET articles = 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER articles_count_reset_on_truncate AFTER TRUNCATE ON articles
    FOR EACH STATEMENT EXECUTE FUNCTION conduit_reset_article_count();
