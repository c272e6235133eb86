DROP TRIGGER articles_count_reset_on_truncate ON articles;
DROP FUNCTION conduit_reset_article_count();
DROP TRIGGER articles_counted_on_delete ON articles;
DROP TRIGGER articles_counted_on_insert ON articles;
DROP FUNCTION conduit_count_deleted_articles();
DROP FUNCTION conduit_count_inserted_articles();
DROP TABLE article_count_shards;
