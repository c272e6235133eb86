-- 003 counted the existing articles before its triggers existed: an
-- article committed in between was never counted, and the kept count
-- stayed wrong for good. Count again, under a lock that keeps articles
-- from being created or deleted while counting (SHARE: reads go on;
-- writers wait for this short transaction), so the count and the
-- triggers now agree. Idempotent: on a right count it changes nothing.
LOCK TABLE articles IN SHARE MODE;
UPDATE article_count_shards
SET articles = CASE WHEN shard = 0 THEN (SELECT count(*) FROM articles) ELSE 0 END;
