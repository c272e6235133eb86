-- Backfill of 007's column, 10,000 articles' links per batch, each batch
-- committed on its own, walking articles by id. Links inserted meanwhile
-- are filled by 007's trigger. Run again after a failure, it only touches
-- what is still missing.
DO $$
DECLARE
    after_id bigint := 0;
    upto_id bigint;
BEGIN
    LOOP
        SELECT max(id) INTO upto_id
        FROM (SELECT id FROM articles WHERE id > after_id ORDER BY id LIMIT 10000) AS batch;
        EXIT WHEN upto_id IS NULL;
        UPDATE article_tags SET created_at = articles.created_at
        FROM articles
        WHERE articles.id = article_tags.article_id
          AND article_tags.article_id > after_id
          AND article_tags.article_id <= upto_id
          AND article_tags.created_at IS NULL;
        COMMIT;
        after_id := upto_id;
    END LOOP;
END $$;
