//! Foreign keys keep PostgreSQL's timing and words (SPEC W8): the same
//! scripts run on a hard-delete twin directly and on a protected database
//! through the proxy give the same outcome statement by statement —
//! deferred keys checked at commit or at `SET CONSTRAINTS … IMMEDIATE`,
//! immediate ones at the statement, child rows that reference a soft-deleted
//! parent refused with 23503 and PostgreSQL's message.

mod common;

use common::{Proxy, ProxyOptions, TestDb, psql};
use tokio_postgres::SimpleQueryMessage;

const SCHEMA: &str = "
CREATE TABLE nu_p (id int PRIMARY KEY, deleted_at timestamptz);
-- Django's keys: DEFERRABLE INITIALLY DEFERRED.
CREATE TABLE nu_c (id int PRIMARY KEY, p_id int NOT NULL REFERENCES nu_p DEFERRABLE INITIALLY DEFERRED,
                   deleted_at timestamptz);
CREATE TABLE im_c (id int PRIMARY KEY, p_id int REFERENCES nu_p DEFERRABLE INITIALLY IMMEDIATE,
                   deleted_at timestamptz);
CREATE TABLE nd_c (id int PRIMARY KEY, p_id int REFERENCES nu_p, deleted_at timestamptz);
-- An unprotected link table without a key of its own.
CREATE TABLE link (p_id int REFERENCES nu_p DEFERRABLE INITIALLY DEFERRED, tag text);
-- A composite key, deferred.
CREATE TABLE cp (a int, b int, deleted_at timestamptz, PRIMARY KEY (a, b));
CREATE TABLE cc (id int PRIMARY KEY, a int, b int, deleted_at timestamptz,
                 FOREIGN KEY (a, b) REFERENCES cp DEFERRABLE INITIALLY DEFERRED);
INSERT INTO nu_p SELECT g FROM generate_series(1, 12) g;
INSERT INTO nu_c (id, p_id) VALUES (1, 1), (2, 2), (3, 3), (4, 4);
INSERT INTO im_c (id, p_id) VALUES (1, 5);
INSERT INTO nd_c (id, p_id) VALUES (1, 6);
INSERT INTO link VALUES (7, 'a');
INSERT INTO cp (a, b) VALUES (1, 1), (2, 2);
INSERT INTO cc (id, a, b) VALUES (1, 1, 1);
";

/// Each script runs in a fresh session and ends with a ROLLBACK.
const SCRIPTS: &[&[&str]] = &[
    // The case: parent first, then its child, in one transaction.
    &[
        "BEGIN",
        "DELETE FROM nu_p WHERE id = 1",
        "DELETE FROM nu_c WHERE p_id = 1",
        "COMMIT",
    ],
    // A deferred key still referenced at commit.
    &["BEGIN", "DELETE FROM nu_p WHERE id = 2", "COMMIT"],
    // Checked when the constraint is made immediate, by ALL or by name.
    &[
        "BEGIN",
        "DELETE FROM nu_p WHERE id = 3",
        "SET CONSTRAINTS ALL IMMEDIATE",
    ],
    &[
        "BEGIN",
        "DELETE FROM nu_p WHERE id = 3",
        "SET CONSTRAINTS nu_c_p_id_fkey IMMEDIATE",
    ],
    &[
        "BEGIN",
        "SET CONSTRAINTS nu_c_p_id_fkey IMMEDIATE",
        "DELETE FROM nu_p WHERE id = 4",
    ],
    // Deferrable, initially immediate: at the statement, unless deferred.
    &["DELETE FROM nu_p WHERE id = 5"],
    &[
        "BEGIN",
        "SET CONSTRAINTS ALL DEFERRED",
        "DELETE FROM nu_p WHERE id = 5",
        "DELETE FROM im_c WHERE id = 1",
        "COMMIT",
    ],
    // Not deferrable: at the statement.
    &["DELETE FROM nu_p WHERE id = 6"],
    // An unprotected link table's rows deleted after their parent.
    &[
        "BEGIN",
        "DELETE FROM nu_p WHERE id = 7",
        "DELETE FROM link WHERE p_id = 7",
        "COMMIT",
    ],
    // Children of a deleted parent: refused, at the key's own time.
    &["DELETE FROM nu_p WHERE id = 9"],
    &["INSERT INTO nd_c (id, p_id) VALUES (2, 9)"],
    &["UPDATE nd_c SET p_id = 9 WHERE id = 1"],
    &[
        "BEGIN",
        "INSERT INTO nu_c (id, p_id) VALUES (10, 9)",
        "COMMIT",
    ],
    &[
        "BEGIN",
        "INSERT INTO nu_c (id, p_id) VALUES (11, 9)",
        "SET CONSTRAINTS ALL IMMEDIATE",
    ],
    // The child-side check follows SET CONSTRAINTS by the key's name too,
    // qualified or not, made immediate before or after the insert, and
    // deferred again.
    &[
        "BEGIN",
        "INSERT INTO nu_c (id, p_id) VALUES (11, 9)",
        "SET CONSTRAINTS nu_c_p_id_fkey IMMEDIATE",
    ],
    &[
        "BEGIN",
        "SET CONSTRAINTS public.nu_c_p_id_fkey IMMEDIATE",
        "INSERT INTO nu_c (id, p_id) VALUES (11, 9)",
    ],
    &[
        "BEGIN",
        "SET CONSTRAINTS nu_c_p_id_fkey, cc_a_b_fkey IMMEDIATE",
        "SET CONSTRAINTS nu_c_p_id_fkey DEFERRED",
        "INSERT INTO nu_c (id, p_id) VALUES (11, 9)",
        "INSERT INTO cc (id, a, b) VALUES (4, 2, 2)",
    ],
    &[
        "BEGIN",
        "SET CONSTRAINTS im_c_p_id_fkey DEFERRED",
        "INSERT INTO im_c (id, p_id) VALUES (2, 9)",
        "DELETE FROM im_c WHERE id = 2",
        "COMMIT",
    ],
    &["SET CONSTRAINTS no_such_key IMMEDIATE"],
    &["BEGIN", "SET CONSTRAINTS nd_c_p_id_fkey DEFERRED"],
    // A child gone again by commit is no violation.
    &[
        "BEGIN",
        "INSERT INTO nu_c (id, p_id) VALUES (12, 9)",
        "DELETE FROM nu_c WHERE id = 12",
        "COMMIT",
    ],
    &[
        "INSERT INTO link VALUES (9, 'b')",
        "INSERT INTO link VALUES (NULL, 'c')",
    ],
    &["INSERT INTO nd_c (id, p_id) VALUES (3, 10)"],
    // Composite keys.
    &["BEGIN", "DELETE FROM cp WHERE a = 1", "COMMIT"],
    &["DELETE FROM cp WHERE a = 2"],
    &[
        "BEGIN",
        "INSERT INTO cc (id, a, b) VALUES (2, 2, 2)",
        "INSERT INTO cc (id, a, b) VALUES (3, 2, NULL)",
        "COMMIT",
    ],
];

/// What one statement did: its rows, or its error's code, message and detail.
async fn outcomes(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for script in SCRIPTS {
        for sql in *script {
            let line = match client.simple_query(sql).await {
                Ok(messages) => {
                    let rows: Vec<u64> = messages
                        .iter()
                        .filter_map(|m| match m {
                            SimpleQueryMessage::CommandComplete(n) => Some(*n),
                            _ => None,
                        })
                        .collect();
                    format!("{sql}: ok {rows:?}")
                }
                Err(e) => match e.as_db_error() {
                    Some(db) => format!(
                        "{sql}: {} {} / {}",
                        db.code().code(),
                        db.message(),
                        db.detail().unwrap_or("")
                    ),
                    None => format!("{sql}: {e}"),
                },
            };
            out.push(line);
        }
        let _ = client.simple_query("ROLLBACK").await;
    }
    out
}

#[tokio::test]
async fn foreign_keys_are_checked_when_and_as_postgresql_checks_them() {
    let twin = TestDb::new("fk_timing_twin");
    psql(&twin.url, &["-c", SCHEMA]);
    let db = TestDb::new("fk_timing");
    psql(&db.url, &["-c", SCHEMA]);
    db.migrate();
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });

    let expected = outcomes(&twin.connect().await).await;
    let got = outcomes(&proxy.connect(&db.name).await).await;
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(g, e, "through tombstone vs the twin");
    }
    assert_eq!(got.len(), expected.len());
    // The twin's outcomes are the interesting ones: some statements fail.
    assert!(
        expected.iter().filter(|l| l.contains(": 23503 ")).count() >= 8,
        "{expected:#?}"
    );

    // Nothing was hard-deleted through the proxy, and the parents whose
    // deletes failed are live.
    let direct = db.connect().await;
    let rows: Vec<(i32, bool)> = direct
        .query("SELECT id, deleted_at IS NULL FROM nu_p ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let twin_live: Vec<i32> = twin
        .connect()
        .await
        .query("SELECT id FROM nu_p ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows.len(), 12, "{rows:?}");
    let live: Vec<i32> = rows.iter().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(live, twin_live);
}
