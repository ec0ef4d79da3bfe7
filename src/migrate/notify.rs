//! DDL of change notifications (issue 13 item 6): after a soft delete, a
//! restore, a purge or an erase commits, a `NOTIFY` on the channel
//! `notify.channel` of `rules.toml` (`serve` writes it to
//! `tombstone.settings`) with the table and the keys, as JSON:
//!
//! ```json
//! {"event": "soft_delete", "table": "public.projects", "operation": "…", "count": 1, "keys": [{"id": 1}]}
//! ```
//!
//! `NOTIFY` is transactional: listeners hear of a change when it commits,
//! never of one rolled back. A payload over PostgreSQL's 8,000-byte limit
//! carries `"keys_truncated": true` and the count instead of the keys.
//! Nothing is sent while no channel is set.

/// `tombstone.settings` and `tombstone.notify_change`.
pub const NOTIFY_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS tombstone.settings (name text PRIMARY KEY, value text NOT NULL);

CREATE OR REPLACE FUNCTION tombstone.notify_channel() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
  SELECT nullif(value, '') FROM tombstone.settings WHERE name = 'notify_channel'
$fn$;

CREATE OR REPLACE FUNCTION tombstone.notify_change(event text, schema_name text, table_name text, op uuid, keys jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  ch text := tombstone.notify_channel();
  n int := coalesce(jsonb_array_length(keys), 0);
  payload text;
BEGIN
  IF ch IS NULL OR n = 0 THEN
    RETURN;
  END IF;
  payload := jsonb_build_object('event', event, 'table', schema_name || '.' || table_name,
                                'operation', op, 'count', n, 'keys', keys)::text;
  IF octet_length(payload) > 7900 THEN
    payload := jsonb_build_object('event', event, 'table', schema_name || '.' || table_name,
                                  'operation', op, 'count', n, 'keys_truncated', true)::text;
  END IF;
  PERFORM pg_catalog.pg_notify(ch, payload);
END
$fn$;
REVOKE ALL ON FUNCTION tombstone.notify_change(text, text, text, uuid, jsonb) FROM PUBLIC;
"#;
