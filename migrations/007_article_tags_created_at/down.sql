DROP TRIGGER article_tags_created_at ON article_tags;
DROP FUNCTION article_tags_set_created_at();
ALTER TABLE article_tags DROP COLUMN created_at;
