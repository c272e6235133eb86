-- Who holds the migration lock ($1, the key), for the logs. A bigint
-- advisory key is stored as classid (high half) and objid (low half), with
-- objsubid 1. pg_locks and pg_stat_activity are not in src/schema.rs.
SELECT a.pid, coalesce(a.application_name, '') AS application_name
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
LIMIT 1
