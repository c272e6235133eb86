-- A tag's page, newest first, as an index range: GET /api/articles?tag=
-- reads its page's ids from here (ORDER BY created_at DESC, article_id
-- DESC, like the other lists), and the tag's count from here alone.
-- Built without blocking writes to article_tags.
CREATE INDEX CONCURRENTLY article_tags_tag_id_created_at_idx
    ON article_tags (tag_id, created_at DESC, article_id DESC);
