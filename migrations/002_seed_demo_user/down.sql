-- Removes exactly the rows up.sql inserted. Deleting the demo user also
-- removes, through ON DELETE CASCADE, what that account did since.
DELETE FROM article_tags
WHERE article_id = (SELECT id FROM articles WHERE slug = 'welcome-to-conduit')
  AND tag_id IN (SELECT id FROM tags WHERE name IN ('welcome', 'conduit'));

DELETE FROM articles
WHERE slug = 'welcome-to-conduit'
  AND author_id = (SELECT id FROM users WHERE username = 'demo');

-- Other articles may have taken these tags since; those keep them.
DELETE FROM tags
WHERE name IN ('welcome', 'conduit')
  AND NOT EXISTS (SELECT 1 FROM article_tags WHERE article_tags.tag_id = tags.id);

DELETE FROM users WHERE username = 'demo';
