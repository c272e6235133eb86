-- The `$2` tags used by the most authors among the newest `$1` tag uses
-- (db/tags.rs, popular_tags). Uses are counted per tag and author first
-- (a hash aggregate), so the authors are counted without sorting every use.
SELECT t.name
FROM (
    SELECT recent.tag_id, a.author_id, count(*) AS uses, max(recent.article_id) AS newest
    FROM (SELECT article_id, tag_id FROM article_tags ORDER BY article_id DESC LIMIT $1) AS recent
    JOIN articles a ON a.id = recent.article_id
    GROUP BY recent.tag_id, a.author_id
) AS by_author
JOIN tags t ON t.id = by_author.tag_id
GROUP BY t.id, t.name
ORDER BY count(*) DESC, sum(by_author.uses) DESC, max(by_author.newest) DESC, t.name
LIMIT $2
