//! DDL of the helpers the proxy relies on: the function that turns a
//! refused statement into a server-side error (so it aborts the client's
//! transaction exactly as a real error would), and the event trigger that
//! tells every tombstone instance about schema changes.

/// `tombstone.refuse(sqlstate, message, hint)`: raises the given error.
/// Declared IMMUTABLE so that, called with constants, the planner raises it
/// while planning — at Bind in the extended protocol.
pub const REFUSE_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS tombstone;

CREATE OR REPLACE FUNCTION tombstone.refuse(code text, message text, hint text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
  RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message, HINT = coalesce(hint, '');
END
$fn$;
"#;

/// The event trigger that NOTIFYs `channel` after every DDL command, so
/// that every proxy re-reads the schema within moments.
pub fn schema_change_trigger(channel: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION tombstone.notify_schema_change()
RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify('{channel}', tg_tag);
END
$fn$;

DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tombstone_schema_change') THEN
    CREATE EVENT TRIGGER tombstone_schema_change ON ddl_command_end
      EXECUTE FUNCTION tombstone.notify_schema_change();
  END IF;
END
$do$;
"#
    )
}
