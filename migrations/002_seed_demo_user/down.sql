-- Removes exactly the rows up.sql inserted, or refuses (and the revert
-- rolls back, leaving 002 applied) when that cannot be done without
-- deleting someone else's data or leaving rows that would make up.sql
-- fail when it runs again (a revert that half-succeeds would leave the
-- database at 001 with every later boot failing).
--
-- The seeded account is identified by its email, unique whatever its
-- case; never by the username, which it or others may have changed.
DO $$
DECLARE
    demo_id  BIGINT;
    problems TEXT[] := '{}';
BEGIN
    SELECT id INTO demo_id FROM users WHERE lower(email) = 'demo@example.com';

    IF EXISTS (SELECT 1 FROM users
               WHERE username = 'demo' AND id IS DISTINCT FROM demo_id) THEN
        problems := array_append(problems, 'another account has the username demo'::text);
    END IF;
    IF EXISTS (SELECT 1 FROM articles
               WHERE slug = 'welcome-to-conduit' AND author_id IS DISTINCT FROM demo_id) THEN
        problems := array_append(problems, 'another account''s article has the slug welcome-to-conduit'::text);
    END IF;
    IF EXISTS (SELECT 1 FROM article_tags
               JOIN tags ON tags.id = article_tags.tag_id
               JOIN articles ON articles.id = article_tags.article_id
               WHERE tags.name IN ('welcome', 'conduit')
                 AND (articles.slug <> 'welcome-to-conduit'
                      OR articles.author_id IS DISTINCT FROM demo_id)) THEN
        problems := array_append(problems, 'other articles carry the tags welcome or conduit'::text);
    END IF;
    IF demo_id IS NOT NULL AND (
           EXISTS (SELECT 1 FROM articles
                   WHERE author_id = demo_id AND slug <> 'welcome-to-conduit')
        OR EXISTS (SELECT 1 FROM comments c
                   LEFT JOIN articles a ON a.id = c.article_id
                   WHERE c.author_id = demo_id
                      OR (a.author_id = demo_id AND a.slug = 'welcome-to-conduit'))
        OR EXISTS (SELECT 1 FROM favorites f
                   JOIN articles a ON a.id = f.article_id
                   WHERE f.user_id = demo_id
                      OR (a.author_id = demo_id AND a.slug = 'welcome-to-conduit'))
        OR EXISTS (SELECT 1 FROM follows
                   WHERE follower_id = demo_id OR followed_id = demo_id)) THEN
        problems := array_append(problems, 'the demo account or its welcome article has content up.sql did not create (articles, comments, favorites or follows)'::text);
    END IF;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'cannot revert 002_seed_demo_user: %', array_to_string(problems, '; ')
            USING HINT = 'revert it by hand, or leave it applied: it only seeds the demo account';
    END IF;

    DELETE FROM articles WHERE slug = 'welcome-to-conduit' AND author_id = demo_id;
    DELETE FROM tags
    WHERE name IN ('welcome', 'conduit')
      AND NOT EXISTS (SELECT 1 FROM article_tags WHERE article_tags.tag_id = tags.id);
    DELETE FROM users WHERE id = demo_id;
END;
$$;
