-- Expand: article_tags keeps its article's created_at, so that a tag's
-- page can be read newest first from one index (migration 009) instead of
-- joining every link of the tag back to articles and sorting them.
--
-- Nullable, so adding it is instant (no table rewrite). A BEFORE INSERT
-- trigger fills it from the article for every writer, so a binary that
-- knows nothing of the column (an older one still serving during a rolling
-- upgrade) keeps it right. Articles' created_at never changes, so inserts
-- are the only writes to follow. Rows older than this migration are filled
-- by 008, in batches.
ALTER TABLE article_tags ADD COLUMN created_at timestamptz;

CREATE FUNCTION article_tags_set_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT created_at INTO NEW.created_at FROM articles WHERE id = NEW.article_id;
    RETURN NEW;
END $$;

CREATE TRIGGER article_tags_created_at BEFORE INSERT OR UPDATE OF article_id ON article_tags
    FOR EACH ROW EXECUTE FUNCTION article_tags_set_created_at();
