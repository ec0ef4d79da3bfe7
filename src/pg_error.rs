//! A tokio-postgres error in the words an operator needs. tokio-postgres'
//! own `Display` says only "db error" or "error connecting to server":
//! here an error the server raised gives its message, SQLSTATE, DETAIL and
//! HINT, and one that never reached it (connection refused, a name that
//! does not resolve) the causes behind it.

use tokio_postgres::error::DbError;

/// What PostgreSQL (or one of tombstone's SQL functions) said, or why
/// nothing could be said.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => describe_db(db),
        None => with_causes(e),
    }
}

/// `message (SQLSTATE code)`, then the DETAIL and HINT lines when the
/// server sent them. The `tombstone: ` that tombstone's SQL functions put
/// before their messages (so a psql user knows who refused) is left out:
/// the command line prints it once, before the whole line.
pub fn describe_db(db: &DbError) -> String {
    let message = db.message();
    let message = message.strip_prefix("tombstone: ").unwrap_or(message);
    let mut text = format!("{message} (SQLSTATE {})", db.code().code());
    text.push_str(&details(db.detail(), db.hint()));
    text
}

/// The `detail:` and `hint:` lines of an error, indented under it (a
/// DETAIL of several lines, as a refused restore's list of conflicts,
/// keeps its lines aligned); empty when it has neither.
pub fn details(detail: Option<&str>, hint: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(detail) = detail.filter(|d| !d.is_empty()) {
        let lines: Vec<&str> = detail.lines().collect();
        text.push_str(&format!("\n  detail: {}", lines.join("\n          ")));
    }
    if let Some(hint) = hint.filter(|h| !h.is_empty()) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

/// The error and each of its sources, `: `-separated, leaving out a source
/// whose text the line already holds.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error connecting to server")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_follow_the_error() {
        let e = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            with_causes(&e),
            format!(
                "error connecting to server: {}",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
            )
        );
    }

    #[test]
    fn details_are_indented_lines() {
        assert_eq!(details(None, Some("")), "");
        assert_eq!(details(Some("d"), Some("h")), "\n  detail: d\n  hint: h");
        assert_eq!(details(Some("a\nb"), None), "\n  detail: a\n          b");
    }
}
