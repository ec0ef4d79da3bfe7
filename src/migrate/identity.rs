//! Who and where, as the audit trail records them (SPEC A1, issue 9 item
//! 4): the client address cannot be forged by the client.
//!
//! The proxy passes each protected session's client address to the server
//! as the startup parameter `tombstone.client_addr`, *signed*:
//! `"<addr> <tag>"` with `tag = hex(sha256(key ‖ sha256(key ‖ addr)))` and
//! `key` a random secret in `tombstone.proxy_key`, which only tombstone's
//! owner (and so the proxy's `database.url` role) can read. The audit
//! trail's `client_addr` default is `tombstone.client_addr()`, which
//! returns `<addr>` only when the tag verifies and otherwise the address
//! the server itself sees (`inet_client_addr()`): a `set_config` from a DO
//! block or a function, a `FunctionCall`, or a startup option on a direct
//! connection cannot put another address in the trail. `login_role` is
//! `session_user`, which only a superuser can change.

/// The key, the function, and the audit default.
pub const IDENTITY_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS tombstone.proxy_key (key bytea NOT NULL);
INSERT INTO tombstone.proxy_key (key)
SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text
                                               || pg_catalog.clock_timestamp()::text, 'UTF8'))
 WHERE NOT EXISTS (SELECT 1 FROM tombstone.proxy_key);

-- The client address the proxy signed for this session, else the one the
-- server sees.
CREATE OR REPLACE FUNCTION tombstone.client_addr() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  v text := nullif(pg_catalog.current_setting('tombstone.client_addr', true), '');
  addr text;
  k bytea;
BEGIN
  IF v IS NOT NULL THEN
    addr := pg_catalog.split_part(v, ' ', 1);
    SELECT p.key INTO k FROM tombstone.proxy_key p LIMIT 1;
    IF k IS NOT NULL AND pg_catalog.split_part(v, ' ', 2)
         = pg_catalog.encode(pg_catalog.sha256(k || pg_catalog.sha256(k || pg_catalog.convert_to(addr, 'UTF8'))), 'hex') THEN
      RETURN addr;
    END IF;
  END IF;
  RETURN pg_catalog.host(pg_catalog.inet_client_addr());
END
$fn$;

ALTER TABLE tombstone.audit ALTER COLUMN client_addr SET DEFAULT tombstone.client_addr();
"#;

/// The value of `tombstone.client_addr` the proxy sends for `addr`.
pub fn signed_client_addr(key: &[u8], addr: &str) -> String {
    use ring::digest::{SHA256, digest};
    let inner = digest(&SHA256, &[key, addr.as_bytes()].concat());
    let outer = digest(&SHA256, &[key, inner.as_ref()].concat());
    let hex: String = outer.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{addr} {hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tag_depends_on_key_and_address() {
        let a = super::signed_client_addr(b"k1", "10.0.0.7");
        assert!(a.starts_with("10.0.0.7 "));
        assert_eq!(a.len(), "10.0.0.7 ".len() + 64);
        assert_ne!(a, super::signed_client_addr(b"k2", "10.0.0.7"));
        assert_ne!(
            a.split(' ').nth(1),
            super::signed_client_addr(b"k1", "10.0.0.8")
                .split(' ')
                .nth(1)
        );
    }
}
