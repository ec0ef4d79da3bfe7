//! README.md's quick start, run as written.
//!
//! The test reads the first ```sh block after the heading "### Quick start:
//! soft delete in five minutes" from README.md, replaces
//! `target/release/tombstone` with the binary cargo built for the tests (the
//! only change), and runs it with bash under `set -e`. The `#    …` comment
//! lines that follow a psql command in the block are the output it promises;
//! the test compares them with what psql printed. The last query (the audit
//! trail) promises no output in the README: the test checks it lists
//! soft_delete rows by actor `app` with a client address.
//!
//! The block uses fixed names on the local cluster: database `app`, roles
//! `app`, `trash` and `admin`, port 6432 and /tmp/rules.toml. The test
//! refuses to run if any of them is taken, and removes them afterwards,
//! also when it fails. No other test uses these names.

use std::io::Read;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const HEADING: &str = "### Quick start: soft delete in five minutes";
const RELEASE_BINARY: &str = "target/release/tombstone";
const DATABASE: &str = "app";
const ROLES: [&str; 3] = ["app", "trash", "admin"];
const PORT: u16 = 6432;
const RULES: &str = "/tmp/rules.toml";
/// How long the whole block may take (it takes about a second).
const DEADLINE: Duration = Duration::from_secs(120);
/// bash's xtrace prefix, written to stdout so that each command's output
/// follows the line naming it.
const TRACE: &str = "quick_start: ";

/// The first ```sh block after [`HEADING`].
fn quick_start_block(readme: &str) -> String {
    let mut lines = readme.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end() == HEADING)
        .unwrap_or_else(|| panic!("README.md has no heading {HEADING:?}"));
    lines
        .by_ref()
        .find(|l| l.trim_end() == "```sh")
        .unwrap_or_else(|| panic!("no ```sh block after {HEADING:?} in README.md"));
    let mut block = String::new();
    for line in lines {
        if line.trim_end() == "```" {
            return block;
        }
        block.push_str(line);
        block.push('\n');
    }
    panic!("the ```sh block after {HEADING:?} in README.md is not closed");
}

/// The output the block promises for one psql command: the `#    ` comment
/// lines right after it.
#[derive(Debug)]
struct Promise {
    /// Which psql command of the block (0-based).
    psql: usize,
    /// The command as written, for messages.
    command: String,
    lines: Vec<String>,
}

/// Walks the block's lines: a psql command starts with `psql` and goes on
/// while a line ends with `\` or a double quote is open; `#    ` lines right
/// after it are its promised output.
fn promises(block: &str) -> (usize, Vec<Promise>) {
    let mut count = 0;
    let mut promises: Vec<Promise> = Vec::new();
    // The psql command the previous line belongs to (or whose promise it
    // is), and whether that command goes on to the next line.
    let mut current: Option<(usize, String, bool)> = None;
    for line in block.lines() {
        if let Some((_, command, open)) = current.as_mut()
            && *open
        {
            command.push('\n');
            command.push_str(line);
            *open = command.matches('"').count() % 2 == 1 || line.ends_with('\\');
            continue;
        }
        if let Some(text) = line.strip_prefix("#    ") {
            if let Some((index, command, _)) = &current {
                match promises.last_mut() {
                    Some(p) if p.psql == *index => p.lines.push(text.trim().to_string()),
                    _ => promises.push(Promise {
                        psql: *index,
                        command: command.clone(),
                        lines: vec![text.trim().to_string()],
                    }),
                }
            }
            continue;
        }
        current = None;
        if line.starts_with("psql ") {
            let open = line.matches('"').count() % 2 == 1 || line.ends_with('\\');
            current = Some((count, line.to_string(), open));
            count += 1;
        }
    }
    (count, promises)
}

/// The script's stdout cut at the trace lines: the output of each psql
/// command, in order.
fn psql_outputs(stdout: &str) -> Vec<Vec<&str>> {
    let mut outputs: Vec<Vec<&str>> = Vec::new();
    let mut in_psql = false;
    for line in stdout.lines() {
        let traced = line.starts_with('+');
        if let Some(command) = line.trim_start_matches('+').strip_prefix(TRACE)
            && traced
        {
            in_psql = command.starts_with("psql ");
            if in_psql {
                outputs.push(Vec::new());
            }
        } else if in_psql {
            outputs.last_mut().unwrap().push(line);
        }
    }
    outputs
}

/// The data rows of the first table psql printed in `output` (aligned
/// format: header, a `---+---` line, rows, `(n rows)`), cells trimmed.
fn table(output: &[&str]) -> Option<Vec<Vec<String>>> {
    let is_rule =
        |l: &str| !l.is_empty() && l.contains('-') && l.chars().all(|c| c == '-' || c == '+');
    let start = output.iter().position(|l| is_rule(l))?;
    let rows = output[start + 1..]
        .iter()
        .take_while(|l| !(l.starts_with('(') && l.ends_with(')')))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect();
    Some(rows)
}

/// What a command printed, in words: the rows of its table if it printed
/// one, else its non-empty lines (command tags such as `DELETE 1`).
fn words(output: &[&str]) -> Vec<String> {
    let lines: Vec<String> = match table(output) {
        Some(rows) => rows.iter().map(|r| r.join(" ")).collect(),
        None => output.iter().map(|l| l.to_string()).collect(),
    };
    lines
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect()
}

fn psql_admin(sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .expect("psql not found: install postgresql-client");
    assert!(
        out.status.success(),
        "psql on 127.0.0.1:5432 as postgres failed ({sql}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Refuses to run when the block's names are taken: it would change or
/// remove what belongs to someone else.
fn refuse_if_taken() {
    for tool in ["psql", "createdb", "pg_isready", "bash"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "the quick start needs {tool} on PATH");
    }
    let roles = ROLES.map(|r| format!("'{r}'")).join(", ");
    let taken = psql_admin(&format!(
        "SELECT 'database ' || datname FROM pg_database WHERE datname = '{DATABASE}' \
         UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE rolname IN ({roles})"
    ));
    assert!(
        taken.trim().is_empty(),
        "refusing to run the README quick start: it creates database {DATABASE:?} and roles \
         {ROLES:?} on 127.0.0.1:5432, and these exist already:\n{taken}\
         drop them (if they are a leftover of this test) and run again"
    );
    let port_free = TcpStream::connect(("127.0.0.1", PORT)).is_err()
        && TcpListener::bind(("127.0.0.1", PORT)).is_ok();
    assert!(
        port_free,
        "refusing to run the README quick start: port {PORT} is taken and the quick start's \
         proxy listens there"
    );
    assert!(
        !Path::new(RULES).exists(),
        "refusing to run the README quick start: it writes {RULES}, which exists already"
    );
}

/// Removes what the block created, and stops what it started, when the
/// test ends, also on failure.
struct Cleanup {
    /// The script's bash, leader of the process group the script runs in.
    script: Option<Child>,
}

impl Cleanup {
    /// Stops every process of the script's group (the script, the proxy it
    /// started in the background, a psql still running) and waits until
    /// they are gone.
    fn stop_group(&mut self) {
        let Some(mut script) = self.script.take() else {
            return;
        };
        let group = script.id() as i32;
        let alive = || unsafe { libc::kill(-group, 0) } == 0;
        unsafe { libc::kill(-group, libc::SIGTERM) };
        // Reaped, bash no longer counts as a member of its group.
        let _ = script.wait();
        let until = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive() {
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.stop_group();
        let mut sql = vec![format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")];
        sql.extend(ROLES.iter().map(|r| format!("DROP ROLE IF EXISTS {r}")));
        let mut psql = Command::new("psql");
        psql.args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
        ])
        .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1"]);
        for s in &sql {
            psql.args(["-c", s]);
        }
        match psql.status() {
            Ok(s) if s.success() => {}
            other => eprintln!("quick start cleanup: {sql:?} failed: {other:?}"),
        }
        let _ = std::fs::remove_file(RULES);
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_with_deadline(script: &mut Child) -> Option<ExitStatus> {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = script.try_wait().expect("waiting for bash") {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn readme_quick_start_runs_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(Path::new(root).join("README.md")).unwrap();
    let block = quick_start_block(&readme);
    assert!(
        block.contains(RELEASE_BINARY),
        "the quick start no longer runs {RELEASE_BINARY}: update this test"
    );
    let (psql_count, promises) = promises(&block);
    assert!(
        !promises.is_empty(),
        "no promised output (`#    …` lines after a psql command) in the quick start"
    );
    let ran = block.replace(RELEASE_BINARY, env!("CARGO_BIN_EXE_tombstone"));

    refuse_if_taken();
    let mut cleanup = Cleanup { script: None };

    // psql stops at the first failing statement of a file or here-document
    // (as `set -e` does for commands), and a user's ~/.psqlrc is not read.
    let psqlrc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(psqlrc.path(), "\\set ON_ERROR_STOP on\n").unwrap();
    // Prepended: stop the background proxy when the script ends, stop at
    // the first failing command, and trace each command to stdout.
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null' EXIT\nset -e\n\
         PS4='+{TRACE}'\nBASH_XTRACEFD=1\nset -x\n{ran}"
    );
    let mut script = Command::new("bash")
        .args(["-c", &script])
        .current_dir(root)
        .env("PSQLRC", psqlrc.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash not found");
    let stdout = read_all(script.stdout.take().unwrap());
    let stderr = read_all(script.stderr.take().unwrap());
    let script = cleanup.script.insert(script);
    let status = wait_with_deadline(script);
    cleanup.stop_group();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let shown = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    match status {
        None => panic!("the quick start did not finish in {DEADLINE:?}\n{shown}"),
        Some(s) => assert!(s.success(), "the quick start failed ({s})\n{shown}"),
    }

    let outputs = psql_outputs(&stdout);
    assert_eq!(
        outputs.len(),
        psql_count,
        "the quick start has {psql_count} psql commands, the trace shows {}\n{shown}",
        outputs.len()
    );
    for promise in &promises {
        let printed = words(&outputs[promise.psql]);
        let promised: Vec<String> = promise
            .lines
            .iter()
            .flat_map(|l| l.split_whitespace().map(str::to_string))
            .collect();
        assert_eq!(
            printed,
            promised,
            "the quick start promises {:?} for\n{}\nand psql printed:\n{}",
            promise.lines,
            promise.command,
            outputs[promise.psql].join("\n")
        );
    }

    // The last command reads the audit trail: table, rows, actor, client.
    let audit = outputs.last().unwrap();
    let rows = table(audit).unwrap_or_else(|| panic!("no table from the audit query\n{shown}"));
    assert!(
        !rows.is_empty(),
        "the audit trail has no soft_delete rows\n{shown}"
    );
    for row in &rows {
        assert_eq!(
            row.len(),
            4,
            "table_name, count, actor, client_addr: {row:?}"
        );
        let count: u64 = row[1].parse().unwrap_or(0);
        assert!(count > 0, "a soft_delete count: {row:?}");
        assert_eq!(row[2], "app", "the actor is the application role: {row:?}");
        let addr = row[3].split('/').next().unwrap_or("");
        assert!(
            addr.parse::<IpAddr>().is_ok(),
            "the client address is recorded: {row:?}"
        );
    }
    assert!(
        rows.iter().any(|r| r[0] == "projects" && r[1] == "1"),
        "the deleted project is in the audit trail: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r[0] == "tasks"),
        "the cascade to its tasks is in the audit trail: {rows:?}"
    );
}
