//! Parsing and validation of `rules.toml`: every error names its key.

use std::time::Duration;

use super::*;

fn err(text: &str) -> String {
    match Config::parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_file_gives_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.listen.address.to_string(), "127.0.0.1:6432");
    assert_eq!(c.upstream.host, "127.0.0.1");
    assert_eq!(c.upstream.port, 5432);
    assert_eq!(c.upstream.tls, UpstreamTlsMode::Disable);
    assert_eq!(c.timeouts.connect, Duration::from_secs(5));
    assert_eq!(c.timeouts.idle, None);
    assert_eq!(c.log.format, LogFormat::Human);
}

#[test]
fn full_file_parses() {
    let c = Config::parse(
        r#"
        [listen]
        address = "0.0.0.0:7000"
        max_message_bytes = 4096
        shutdown_grace = "2s"
        [upstream]
        host = "db.internal"
        port = 5433
        tls = "require"
        [timeouts]
        connect = "750ms"
        startup = "10s"
        idle = "5m"
        [log]
        format = "json"
        level = "tombstone=debug"
        "#,
    )
    .unwrap();
    assert_eq!(c.listen.address.port(), 7000);
    assert_eq!(c.listen.shutdown_grace, Duration::from_secs(2));
    assert_eq!(c.upstream.tls, UpstreamTlsMode::Require);
    assert_eq!(c.timeouts.connect, Duration::from_millis(750));
    assert_eq!(c.timeouts.idle, Some(Duration::from_secs(300)));
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn unknown_key_is_named() {
    let e = err("[upstream]\nhots = \"x\"\n");
    assert!(e.contains("hots"), "{e}");
    let e = err("[listn]\naddress = \"127.0.0.1:1\"\n");
    assert!(e.contains("listn"), "{e}");
}

#[test]
fn bad_values_name_their_key() {
    for (text, key) in [
        ("[upstream]\nport = \"five\"\n", "upstream.port"),
        ("[upstream]\nport = 70000\n", "upstream.port"),
        ("[upstream]\nport = 0\n", "upstream.port"),
        ("[upstream]\ntls = \"sometimes\"\n", "upstream.tls"),
        ("[upstream]\nhost = \"\"\n", "upstream.host"),
        ("[listen]\naddress = \"nowhere\"\n", "listen.address"),
        (
            "[listen]\nmax_message_bytes = 10\n",
            "listen.max_message_bytes",
        ),
        ("[timeouts]\nconnect = \"soon\"\n", "timeouts.connect"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[log]\nlevel = \"[[[\"\n", "log.level"),
        (
            "[listen.tls]\ncert_file = \"/nonexistent.crt\"\nkey_file = \"/nonexistent.key\"\n",
            "listen.tls.cert_file",
        ),
        (
            "[listen.tls]\ncert_file = \"/etc/hostname\"\n",
            "listen.tls",
        ),
        (
            "[upstream]\nca_file = \"/nonexistent.pem\"\n",
            "upstream.ca_file",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(key), "error for {text:?} should name {key}: {e}");
    }
}

/// The reason is the value and what was expected, on one line; never the
/// source snippet's gutter (`|`) that toml's display starts with.
#[test]
fn bad_values_say_what_was_expected() {
    for (text, reason) in [
        (
            "[upstream]\nport = 70000\n",
            "key `upstream.port`: invalid value: integer `70000`, expected u16",
        ),
        (
            "[listen]\nmax_message_bytes = \"big\"\n",
            "key `listen.max_message_bytes`: invalid type: string \"big\"",
        ),
        ("[retention]\nkeep = \"30 dayz\"\n", "30 dayz"),
    ] {
        let e = err(text);
        assert!(e.contains(reason), "{text:?}: {e}");
        assert!(
            !e.contains('\n') && !e.trim_end().ends_with('|'),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn syntax_error_is_reported() {
    let e = err("[listen\n");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn missing_file_is_an_error() {
    let e = Config::load(std::path::Path::new("/nonexistent/rules.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/rules.toml"), "{e}");
}

#[test]
fn example_rules_toml_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.toml");
    Config::load(&path).unwrap();
}

#[test]
fn protection_tables_parse() {
    let c = Config::parse(
        r#"
        [database]
        url = "postgres://tombstone@127.0.0.1:5432/app"
        refresh_interval = "10s"
        [soft_delete]
        column = "removed_at"
        exclude = ["public.sessions"]
        remove_edges = ["tasks_project_id_fkey"]
        [soft_delete.columns]
        "billing.invoices" = "voided_at"
        [[soft_delete.add_edges]]
        parent = "public.projects"
        parent_columns = ["id"]
        child = "public.notes"
        child_columns = ["project_ref"]
        on_delete = "set_null"
        [roles]
        bypass = ["tombstone_admin"]
        [audit]
        updates = false
        retention = "90days"
        [audit.tables."public.tasks"]
        updates = true
        [cache]
        capacity = 5
        "#,
    )
    .unwrap();
    assert_eq!(c.database.name().as_deref(), Some("app"));
    assert_eq!(c.database.refresh_interval, Some(Duration::from_secs(10)));
    assert_eq!(c.soft_delete.column, "removed_at");
    assert_eq!(c.soft_delete.add_edges[0].on_delete, EdgeAction::SetNull);
    assert_eq!(c.roles.bypass, ["tombstone_admin"]);
    assert!(c.audit.audits_updates("public.tasks"));
    assert!(!c.audit.audits_updates("public.projects"));
    assert!(c.audit.audits_inserts("public.projects"));
    assert_eq!(c.audit.retention, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(c.cache.capacity, 5);
}

#[test]
fn protection_errors_name_their_key() {
    for (text, key) in [
        ("[database]\nurl = \"not a url ::\"\n", "database.url"),
        (
            "[database]\nurl = \"postgres://127.0.0.1\"\n",
            "database.url",
        ),
        (
            "[database]\nnotify_channel = \"Bad-Name\"\n",
            "database.notify_channel",
        ),
        (
            "[soft_delete]\ncolumn = \"Deleted At\"\n",
            "soft_delete.column",
        ),
        (
            "[soft_delete]\nexclude = [\"sessions\"]\n",
            "soft_delete.exclude",
        ),
        (
            "[[soft_delete.add_edges]]\nparent = \"public.a\"\nparent_columns = [\"id\"]\nchild = \"public.b\"\nchild_columns = []\n",
            "soft_delete.add_edges[0].child_columns",
        ),
        (
            "[[soft_delete.add_edges]]\nparent = \"public.a\"\nparent_columns = [\"id\"]\nchild = \"public.b\"\nchild_columns = [\"a\"]\non_delete = \"explode\"\n",
            "soft_delete.add_edges[0].on_delete",
        ),
        ("[roles]\nbypass = \"admin\"\n", "roles.bypass"),
        ("[audit]\ninserts = \"yes\"\n", "audit.inserts"),
        ("[audit.tables.tasks]\ninserts = false\n", "audit.tables"),
        ("[cache]\ncapacity = -1\n", "cache.capacity"),
    ] {
        let e = err(text);
        assert!(e.contains(key), "error for {text:?} should name {key}: {e}");
    }
}

#[test]
fn parser_pool_keys() {
    let c = Config::parse("[parser]\nthreads = 3\nqueue = 10\n").unwrap();
    assert_eq!((c.parser.thread_count(), c.parser.queue_len()), (3, 10));
    let d = Config::parse("").unwrap();
    assert!(d.parser.thread_count() >= 1);
    assert_eq!(d.parser.queue_len(), 64 * d.parser.thread_count());
    assert!(err("[parser]\nthreads = 100000\n").contains("parser.threads"));
    assert!(err("[parser]\nqueue = 1000000\n").contains("parser.queue"));
    assert!(err("[parser]\nthreads = -1\n").contains("parser.threads"));
    assert!(err("[parser]\nsize = 1\n").contains("size"));
}
