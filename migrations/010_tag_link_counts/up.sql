-- The number of links of each tag, kept as links come and go, so that
-- GET /api/articles?tag= does not count the tag's links on every request
-- (20,000 for the most used tag at scale 1: 2.2 ms of database time, about
-- 40% of the page's throughput). Readers add up the tag's rows.
--
-- Shards, so that concurrent writers never wait for one another: a
-- statement changing a tag's links adds to any row of that tag that no
-- other transaction holds (FOR UPDATE SKIP LOCKED), and opens a new row
-- (a new shard number from a sequence) only when every row is held. A
-- writer therefore never waits on a count row, so the count cannot take
-- part in a deadlock, however transactions order their tag changes (a
-- tag update deletes the old links, then inserts the new ones: two
-- statements, which no lock order within a statement can protect). A tag
-- has at most as many rows as it ever had writers at once. Shard 0 is the
-- backfill's (below), which writers never touch.
--
-- One DO block, because the backfill commits batch by batch (a COMMIT
-- inside DO must be the only statement of what diesel sends), and so the
-- whole migration runs outside a transaction (metadata.toml). Its first
-- transaction creates the table, functions and triggers, or finds them
-- there when it runs again after a failure.
DO $migration$
DECLARE
    after_id bigint := 0;
    upto_id bigint;
BEGIN
    IF to_regclass('tag_link_count_shards') IS NULL THEN
        CREATE TABLE tag_link_count_shards (
            tag_id bigint NOT NULL,
            shard  bigint NOT NULL,
            links  bigint NOT NULL,
            PRIMARY KEY (tag_id, shard)
        );
        -- No foreign key to tags: the cascade of a tag's deletion would race
        -- with the trigger adding its links' removal. A deleted tag's rows
        -- add up to zero, and tag ids are never reused.
        CREATE SEQUENCE tag_link_count_shards_shard_seq AS bigint
            OWNED BY tag_link_count_shards.shard;

        -- Adds delta to the count of tag, on a shard no other transaction
        -- holds: never waits for a lock.
        CREATE FUNCTION conduit_add_tag_links(tag bigint, delta bigint) RETURNS void
        LANGUAGE plpgsql AS $fn$
        BEGIN
            UPDATE tag_link_count_shards SET links = links + delta
            WHERE tag_id = tag AND shard = (
                SELECT shard FROM tag_link_count_shards
                WHERE tag_id = tag AND shard > 0
                LIMIT 1 FOR UPDATE SKIP LOCKED);
            IF NOT FOUND THEN
                -- A new shard number: no row can conflict, so no wait.
                INSERT INTO tag_link_count_shards (tag_id, shard, links)
                VALUES (tag, nextval('tag_link_count_shards_shard_seq'), delta);
            END IF;
        END;
        $fn$;

        -- Statement-level, with transition tables: one change per tag and
        -- statement, whatever the number of links (deletions cascading from
        -- articles, users and tags included), tags in id order.
        CREATE FUNCTION conduit_count_tag_links() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        DECLARE
            change record;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                FOR change IN
                    SELECT tag_id, count(*) AS delta FROM inserted GROUP BY tag_id ORDER BY tag_id
                LOOP
                    PERFORM conduit_add_tag_links(change.tag_id, change.delta);
                END LOOP;
            ELSIF TG_OP = 'DELETE' THEN
                FOR change IN
                    SELECT tag_id, -count(*) AS delta FROM deleted GROUP BY tag_id ORDER BY tag_id
                LOOP
                    PERFORM conduit_add_tag_links(change.tag_id, change.delta);
                END LOOP;
            ELSE
                FOR change IN
                    SELECT tag_id, sum(delta) AS delta FROM (
                        SELECT tag_id, 1 AS delta FROM inserted
                        UNION ALL
                        SELECT tag_id, -1 FROM deleted) AS moved
                    GROUP BY tag_id HAVING sum(delta) <> 0 ORDER BY tag_id
                LOOP
                    PERFORM conduit_add_tag_links(change.tag_id, change.delta);
                END LOOP;
            END IF;
            RETURN NULL;
        END;
        $fn$;

        CREATE TRIGGER article_tags_counted_on_insert AFTER INSERT ON article_tags
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION conduit_count_tag_links();
        CREATE TRIGGER article_tags_counted_on_delete AFTER DELETE ON article_tags
            REFERENCING OLD TABLE AS deleted
            FOR EACH STATEMENT EXECUTE FUNCTION conduit_count_tag_links();
        CREATE TRIGGER article_tags_counted_on_update AFTER UPDATE ON article_tags
            REFERENCING OLD TABLE AS deleted NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION conduit_count_tag_links();

        -- TRUNCATE bypasses the triggers of DELETE: every count is 0 again.
        CREATE FUNCTION conduit_reset_tag_link_counts() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            DELETE FROM tag_link_count_shards;
            RETURN NULL;
        END;
        $fn$;
        CREATE TRIGGER article_tags_count_reset_on_truncate AFTER TRUNCATE ON article_tags
            FOR EACH STATEMENT EXECUTE FUNCTION conduit_reset_tag_link_counts();
    END IF;
    -- From here on every change to a link is counted, by this binary or an
    -- older one alike: creating the triggers waited for every transaction
    -- that had written article_tags, and every later one sees them.
    COMMIT;

    -- The backfill, 1,000 tags per transaction: each tag's shard 0 becomes
    -- its links minus what its other shards hold, both read in one
    -- statement, so from one snapshot. A transaction that changes links
    -- commits its shard changes with them: the snapshot sees both or
    -- neither, and whatever commits later is in the shards alone. So the
    -- sum is exact whatever writes run meanwhile, no lock is taken on
    -- article_tags, and a second run (after a failure) writes the same.
    LOOP
        SELECT max(id) INTO upto_id
        FROM (SELECT id FROM tags WHERE id > after_id ORDER BY id LIMIT 1000) AS batch;
        EXIT WHEN upto_id IS NULL;
        INSERT INTO tag_link_count_shards (tag_id, shard, links)
        SELECT tags.id, 0,
               (SELECT count(*) FROM article_tags WHERE article_tags.tag_id = tags.id)
             - (SELECT COALESCE(sum(links), 0) FROM tag_link_count_shards AS s
                WHERE s.tag_id = tags.id AND s.shard > 0)
        FROM tags
        WHERE tags.id > after_id AND tags.id <= upto_id
        ON CONFLICT (tag_id, shard) DO UPDATE SET links = EXCLUDED.links;
        COMMIT;
        after_id := upto_id;
    END LOOP;
END;
$migration$;
