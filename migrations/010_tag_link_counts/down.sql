-- Sent as one simple query, which PostgreSQL runs as one implicit
-- transaction; IF EXISTS all the same, as for any migration run outside
-- an explicit one.
DROP TRIGGER IF EXISTS article_tags_count_reset_on_truncate ON article_tags;
DROP TRIGGER IF EXISTS article_tags_counted_on_update ON article_tags;
DROP TRIGGER IF EXISTS article_tags_counted_on_delete ON article_tags;
DROP TRIGGER IF EXISTS article_tags_counted_on_insert ON article_tags;
DROP FUNCTION IF EXISTS conduit_reset_tag_link_counts();
DROP FUNCTION IF EXISTS conduit_count_tag_links();
DROP FUNCTION IF EXISTS conduit_add_tag_links(bigint, bigint);
-- Its sequence goes with it (OWNED BY).
DROP TABLE IF EXISTS tag_link_count_shards;
