-- The schema as migrations make it, one line per object: kind, name and
-- definition, separated by tabs, sorted bytewise. Used by the binary (the
-- drift check) and by `make expected-schema`, which writes its output to
-- src/db/migrations/expected_schema.txt. System schemas, the migration
-- bookkeeping tables (named __*) and objects owned by extensions are left
-- out; so are extension versions, which differ between servers.
WITH schemas AS (
    SELECT n.oid, n.nspname FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
),
owned_by_extension AS (
    SELECT d.classid, d.objid FROM pg_depend d WHERE d.deptype = 'e'
),
relations AS (
    SELECT c.oid, c.relkind, quote_ident(s.nspname) || '.' || quote_ident(c.relname) AS name
    FROM pg_class c JOIN schemas s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relname NOT LIKE '\_\_%'
      AND NOT EXISTS (SELECT 1 FROM owned_by_extension e
                      WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid)
),
objects (kind, name, definition) AS (
    SELECT 'schema', quote_ident(nspname), '' FROM schemas
    UNION ALL
    SELECT 'extension', quote_ident(extname), '' FROM pg_extension
    UNION ALL
    SELECT CASE relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                        WHEN 'm' THEN 'materialized view' ELSE 'table' END,
           r.name,
           CASE r.relkind
               WHEN 'S' THEN (SELECT format('%s start %s increment %s min %s max %s%s',
                                            q.seqtypid::regtype, q.seqstart, q.seqincrement,
                                            q.seqmin, q.seqmax,
                                            CASE WHEN q.seqcycle THEN ' cycle' ELSE '' END)
                              FROM pg_sequence q WHERE q.seqrelid = r.oid)
               WHEN 'v' THEN md5(pg_get_viewdef(r.oid))
               WHEN 'm' THEN md5(pg_get_viewdef(r.oid))
               WHEN 'p' THEN 'partitioned'
               ELSE ''
           END
    FROM relations r
    UNION ALL
    SELECT 'column', r.name || '.' || quote_ident(a.attname),
           format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
           || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS' WHEN 'd' THEN ' IDENTITY BY DEFAULT' ELSE '' END
           || CASE a.attgenerated WHEN 's' THEN ' GENERATED STORED' ELSE '' END
    FROM relations r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE r.relkind IN ('r', 'p')
    UNION ALL
    SELECT 'constraint', r.name || '.' || quote_ident(k.conname), pg_get_constraintdef(k.oid)
    FROM relations r JOIN pg_constraint k ON k.conrelid = r.oid
    UNION ALL
    SELECT 'index', quote_ident(s.nspname) || '.' || quote_ident(c.relname),
           pg_get_indexdef(i.indexrelid)
           || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
    FROM relations r
    JOIN pg_index i ON i.indrelid = r.oid
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN schemas s ON s.oid = c.relnamespace
    UNION ALL
    SELECT 'trigger', r.name || '.' || quote_ident(t.tgname),
           pg_get_triggerdef(t.oid)
           || CASE t.tgenabled WHEN 'D' THEN ' (DISABLED)' WHEN 'O' THEN '' ELSE ' (ENABLED ' || t.tgenabled::text || ')' END
    FROM relations r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
           quote_ident(s.nspname) || '.' || quote_ident(p.proname)
           || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           CASE WHEN p.prokind = 'a' THEN '' ELSE 'md5 ' || md5(pg_get_functiondef(p.oid)) END
    FROM pg_proc p JOIN schemas s ON s.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM owned_by_extension e
                      WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid)
)
SELECT line FROM (
    SELECT kind || E'\t' || name || E'\t' || coalesce(definition, '') AS line FROM objects
) lines
ORDER BY line COLLATE "C";
