//! The trash page on the admin listener (issue 13 item 4): login checked
//! against PostgreSQL, sessions, CSRF, escaping, and the whole path in a
//! real headless browser (Debian's chromium and chromium-driver, driven
//! over the WebDriver protocol: JSON over HTTP, `common::http`).
//!
//! The test cluster trusts every connection from 127.0.0.1, so the server
//! never checks a password here; the page also checks it against the
//! role's SCRAM verifier in `pg_authid` (the proxy's `database.url` is a
//! superuser in these tests), which is what refuses the wrong passwords
//! below.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{admin_url, count, free_port, http, psql};

const PASSWORD: &str = "correct-horse-battery";

fn admin_toml(port: u16) -> String {
    format!(
        "[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"a-token-of-32-characters-at-least\"\n"
    )
}

/// A protected scenario with the admin listener, the admin role's (and the
/// app role's) password set.
fn start(tag: &str) -> (Protected, SocketAddr) {
    let port = free_port();
    let p = Protected::start(tag, 2, &admin_toml(port));
    for role in [&p.admin, &p.app] {
        psql(
            &admin_url(),
            &[
                "-c",
                &format!(
                    "SET password_encryption = 'scram-sha-256'; ALTER ROLE \"{role}\" PASSWORD '{PASSWORD}'"
                ),
            ],
        );
    }
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `role`'s form body.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// POSTs a form from a page of the listener (Origin set).
fn post(addr: SocketAddr, path: &str, cookie: Option<&str>, body: &str) -> http::Response {
    let origin = format!("http://{addr}");
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", origin.as_str()),
    ];
    let cookie_header;
    if let Some(c) = cookie {
        cookie_header = c.to_string();
        headers.push(("Cookie", cookie_header.as_str()));
    }
    http::request(addr, "POST", path, &headers, body)
}

fn get_with(addr: SocketAddr, path: &str, cookie: &str) -> http::Response {
    http::request(addr, "GET", path, &[("Cookie", cookie)], "")
}

/// Logs in; the `Cookie` header value of the session.
fn login(addr: SocketAddr, role: &str, password: &str) -> Result<String, http::Response> {
    let r = post(
        addr,
        "/login",
        None,
        &form(&[("role", role), ("password", password)]),
    );
    match r.header("set-cookie") {
        Some(c) if r.status == 303 => Ok(c.split(';').next().unwrap().to_string()),
        _ => Err(r),
    }
}

/// The CSRF token a page carries.
fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The first action id the trash page links to.
fn first_action(body: &str) -> String {
    let at = body.find("href=\"/trash/action/").expect("an action link");
    let rest = &body[at + "href=\"/trash/action/".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn project_1_deleted(p: &Protected) -> bool {
    let app = p.connect_as(&p.app).await;
    count(&app, "SELECT count(*) FROM projects WHERE id = 1").await == 0
}

#[tokio::test]
async fn nothing_without_a_session() {
    let (p, addr) = start("page_anon");
    for path in [
        "/",
        "/trash",
        "/trash?table=projects",
        "/trash/action/1",
        "/trash/action/1/restore",
    ] {
        let r = http::get(addr, path);
        assert_eq!(r.status, 303, "{path}: {}", r.body);
        let to = r.header("location").unwrap();
        assert!(to == "/login" || to == "/trash", "{path} → {to}");
    }
    let login_page = http::get(addr, "/login");
    assert_eq!(login_page.status, 200);
    assert!(
        login_page.body.contains("id=\"password\""),
        "{}",
        login_page.body
    );
    // A POST with no session is refused, whatever it names.
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id = 1")
        .await
        .unwrap();
    let r = post(addr, "/trash/action/1/restore", None, "csrf=x");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(project_1_deleted(&p).await);
    // A made-up cookie is no session.
    let r = get_with(addr, "/trash", "tombstone_admin=00ff00ff");
    assert_eq!(r.status, 303);
    // /health stays open.
    assert_eq!(http::get(addr, "/health").status, 200);
}

#[tokio::test]
async fn logins_are_checked_against_postgresql() {
    let (p, addr) = start("page_login");
    // Wrong password: refused, though the cluster trusts the connection.
    let r = login(addr, &p.admin, "not-the-password").unwrap_err();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("wrong role name or password"), "{}", r.body);
    // No such role.
    let r = login(addr, "no_such_role_page", PASSWORD).unwrap_err();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("wrong role name or password"), "{}", r.body);
    // The right password of a role that is no bypass member.
    let r = login(addr, &p.app, PASSWORD).unwrap_err();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.body.contains("is not a member of a bypass role"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&p.bypass_role), "{}", r.body);
    // A wrong token.
    let r = post(
        addr,
        "/login",
        None,
        &form(&[("token", "a-token-of-32-characters-at-leasX")]),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("wrong token"), "{}", r.body);
    // A login form sent from another site.
    let r = http::request(
        addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
        ],
        &form(&[("role", &p.admin), ("password", PASSWORD)]),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("set-cookie").is_none());
    // The admin: a session cookie, HttpOnly and SameSite=Strict.
    let r = post(
        addr,
        "/login",
        None,
        &form(&[("role", &p.admin), ("password", PASSWORD)]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = get_with(addr, "/trash", &cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&p.admin), "{}", page.body);
    // The token logs in too, as actor admin.token.
    let r = post(
        addr,
        "/login",
        None,
        &form(&[("token", "a-token-of-32-characters-at-least")]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // Logout ends the session (with its CSRF token only).
    let csrf = csrf_of(&page.body);
    let r = post(addr, "/logout", Some(&cookie), "csrf=wrong");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(get_with(addr, "/trash", &cookie).status, 200);
    let r = post(addr, "/logout", Some(&cookie), &form(&[("csrf", &csrf)]));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(get_with(addr, "/trash", &cookie).status, 303);
    // Bodies are capped.
    let big = "x".repeat(64 * 1024);
    let r = post(addr, "/login", None, &format!("role={big}"));
    assert_eq!(r.status, 413, "{}", r.body);
}

#[tokio::test]
async fn csrf_and_escaping() {
    let (p, addr) = start("page_csrf");
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM projects WHERE id = 1")
        .await
        .unwrap();
    // An actor from the data, with markup in it.
    app.batch_execute(
        "SET tombstone.actor = '<img src=x onerror=alert(1)>'; DELETE FROM projects WHERE id = 2; RESET tombstone.actor",
    )
    .await
    .unwrap();
    let cookie = login(addr, &p.admin, PASSWORD).map_err(|r| r.body).unwrap();
    let page = get_with(addr, "/trash", &cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(
        page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        page.body
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    // Filters: by table, key, actor and time.
    let by_actor = get_with(addr, "/trash?actor=onerror", &cookie);
    assert_eq!(
        by_actor.body.matches("class=\"action\"").count(),
        1,
        "{}",
        by_actor.body
    );
    let by_key = get_with(addr, "/trash?table=projects&key=1", &cookie);
    assert_eq!(
        by_key.body.matches("class=\"action\"").count(),
        1,
        "{}",
        by_key.body
    );
    assert!(
        by_key.body.contains("{&quot;id&quot;:1}"),
        "{}",
        by_key.body
    );
    let action = first_action(&by_key.body);
    let future = get_with(addr, "/trash?since=2100-01-01", &cookie);
    assert!(future.body.contains("id=\"empty\""), "{}", future.body);
    let bogus = get_with(addr, "/trash?since=bogus", &cookie);
    assert_eq!(bogus.status, 400);
    assert!(
        bogus.body.contains("neither a duration nor a timestamp"),
        "{}",
        bogus.body
    );
    let xss_table = get_with(addr, "/trash?table=%3Cscript%3E", &cookie);
    assert!(!xss_table.body.contains("<script>"), "{}", xss_table.body);
    // A restore without the token, with a wrong one, from another origin,
    // or as a GET: refused, nothing changes.
    let path = format!("/trash/action/{action}/restore");
    let confirm = get_with(addr, &path, &cookie);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("id=\"confirm\""), "{}", confirm.body);
    let csrf = csrf_of(&confirm.body);
    assert_eq!(post(addr, &path, Some(&cookie), "").status, 403);
    assert_eq!(post(addr, &path, Some(&cookie), "csrf=0000").status, 403);
    let mut wrong = csrf.clone();
    wrong.replace_range(0..1, if csrf.starts_with('a') { "b" } else { "a" });
    assert_eq!(
        post(addr, &path, Some(&cookie), &form(&[("csrf", &wrong)])).status,
        403
    );
    let foreign = http::request(
        addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "http://evil.example"),
            ("Cookie", &cookie),
        ],
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let no_origin = http::request(
        addr,
        "POST",
        &path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        &form(&[("csrf", &csrf)]),
    );
    assert_eq!(no_origin.status, 403, "{}", no_origin.body);
    assert!(project_1_deleted(&p).await);
    // With it: restored, audited as the admin.
    let done = post(addr, &path, Some(&cookie), &form(&[("csrf", &csrf)]));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("id=\"result\""), "{}", done.body);
    assert!(!project_1_deleted(&p).await);
    // Again: already restored, nothing changes.
    let again = post(addr, &path, Some(&cookie), &form(&[("csrf", &csrf)]));
    assert!(again.body.contains("restored before"), "{}", again.body);
}

/// chromedriver on a free port, and one headless chromium session.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run chromedriver (apt-get install chromium chromium-driver)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
        };
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // A loaded machine: wait for elements of the page a click
            // loads instead of looking before it arrived.
            "timeouts": {"implicit": 15000, "pageLoad": 60000},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
            }
        }}});
        let v = b.call("POST", "/session", &caps);
        b.session = v["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        b
    }

    /// One WebDriver command. chromedriver may keep the connection open
    /// after its answer, so the body is read by its Content-Length, not to
    /// the end of the stream (as `common::http` does).
    fn call(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, BufReader, Read, Write};
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let mut tcp = std::net::TcpStream::connect(self.addr).expect("connect to chromedriver");
        tcp.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        write!(
            tcp,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut reader = BufReader::new(tcp);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a response header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut raw = vec![0u8; length];
        reader.read_exact(&mut raw).expect("the response body");
        let text = String::from_utf8_lossy(&raw);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    fn ok(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let v = self.call(method, &format!("/session/{}{path}", self.session), &body);
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.ok("POST", "/url", serde_json::json!({"url": url}));
    }

    fn find(&self, css: &str) -> String {
        let v = self.ok(
            "POST",
            "/element",
            serde_json::json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().expect("an element").to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.ok(
            "POST",
            &format!("/element/{e}/value"),
            serde_json::json!({"text": text}),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.ok(
            "POST",
            &format!("/element/{e}/click"),
            serde_json::json!({}),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.ok("GET", &format!("/element/{e}/text"), serde_json::json!({}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn source(&self) -> String {
        self.ok("GET", "/source", serde_json::json!({}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn url(&self) -> String {
        self.ok("GET", "/url", serde_json::json!({}))
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether a JavaScript alert is open (an injected script ran).
    fn alert_open(&self) -> bool {
        let v = self.call(
            "GET",
            &format!("/session/{}/alert/text", self.session),
            &serde_json::json!({}),
        );
        v["value"].get("error").is_none()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Not common::http, which panics on errors: a panic here, while a
        // failed test unwinds, would abort the whole binary.
        use std::io::{Read, Write};
        if let Ok(mut tcp) = std::net::TcpStream::connect(self.addr) {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                tcp,
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session, self.addr
            );
            let _ = tcp.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn restore_the_deleted_project_in_a_browser() {
    let (p, addr) = start("page_browser");
    let app = p.connect_as(&p.app).await;
    let tasks = count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await;
    assert!(tasks > 0);
    app.batch_execute(
        "SET tombstone.actor = '<script>alert(1)</script>'; DELETE FROM projects WHERE id = 2; RESET tombstone.actor",
    )
    .await
    .unwrap();
    app.batch_execute("DELETE FROM projects WHERE id = 1")
        .await
        .unwrap();
    assert!(project_1_deleted(&p).await);
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        0
    );

    let b = Browser::start();
    let base = format!("http://{addr}");
    b.go(&format!("{base}/trash"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    // A wrong password first: the page says so.
    b.type_into("#role", &p.admin);
    b.type_into("#password", "wrong-password");
    b.click("#submit");
    assert!(
        b.text("#error").contains("wrong role name or password"),
        "{}",
        b.source()
    );
    b.type_into("#role", &p.admin);
    b.type_into("#password", PASSWORD);
    b.click("#submit");
    assert!(b.url().ends_with("/trash"), "{}: {}", b.url(), b.source());
    assert_eq!(b.text("#whoami"), p.admin);
    // Both deletes are there, the markup in the actor shown as text.
    let all = b.source();
    assert!(all.matches("class=\"action\"").count() >= 2, "{all}");
    assert!(!b.alert_open(), "a script from the data ran");
    // Find project 1.
    b.type_into("#f-table", "projects");
    b.type_into("#f-key", "1");
    b.click("#filter");
    let found = b.source();
    assert_eq!(found.matches("class=\"action\"").count(), 1, "{found}");
    assert!(found.contains("public.tasks"), "{found}");
    b.click("section.action h2 a");
    // The preview: ready, what comes back per table.
    assert!(b.text("#status").contains("Ready"), "{}", b.source());
    let preview = b.source();
    assert!(
        preview.contains("public.projects") && preview.contains("public.tasks"),
        "{preview}"
    );
    assert!(project_1_deleted(&p).await, "a preview changes nothing");
    b.click("#restore");
    // The confirmation step; cancelling changes nothing.
    assert!(b.url().ends_with("/restore"), "{}", b.url());
    assert!(
        project_1_deleted(&p).await,
        "the confirmation page changes nothing"
    );
    b.click("#confirm");
    let result = b.text("#result");
    assert!(result.contains("Restored action"), "{}", b.source());
    assert!(result.contains(&p.admin), "{result}");

    // Through the proxy as the app role: project 1 and its tasks are back.
    assert_eq!(
        count(&app, "SELECT count(*) FROM projects WHERE id = 1").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        tasks
    );
    // Audited as the admin, on the admin's own connection.
    let owner = common::connect(&p.db.url).await;
    let restored = count(
        &owner,
        &format!(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'restore' AND table_name = 'projects'
              AND actor = '{}'",
            p.admin
        ),
    )
    .await;
    assert_eq!(restored, 1);
    let by_admin = count(
        &owner,
        &format!(
            "SELECT count(*) FROM tombstone.restores WHERE actor = '{0}' AND login_role = '{0}'",
            p.admin
        ),
    )
    .await;
    assert_eq!(by_admin, 1);
    // Logged out, the trash is gone again.
    b.click("#logout");
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.go(&format!("{base}/trash"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
}

#[tokio::test]
async fn an_operation_restore_refused_lists_its_conflicts() {
    let (p, addr) = start("page_conflict");
    let app = p.connect_as(&p.app).await;
    // A task of project 2 on its own, then the project: two operations.
    app.batch_execute(
        "DELETE FROM tasks WHERE id = (SELECT min(id) FROM tasks WHERE project_id = 2)",
    )
    .await
    .unwrap();
    app.batch_execute("DELETE FROM projects WHERE id = 2")
        .await
        .unwrap();
    let owner = common::connect(&p.db.url).await;
    let op_of = |table: &'static str| {
        let owner = &owner;
        async move {
            let row = owner
                .query_one(
                    "SELECT id::text FROM tombstone.operations WHERE table_name = $1",
                    &[&table],
                )
                .await
                .unwrap();
            row.get::<_, String>(0)
        }
    };
    let task_op = op_of("tasks").await;
    let project_op = op_of("projects").await;
    let cookie = login(addr, &p.admin, PASSWORD).map_err(|r| r.body).unwrap();

    // The task's preview names the project's operation as the conflict.
    let preview = get_with(addr, &format!("/trash/operation/{task_op}"), &cookie);
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("id=\"conflicts\""),
        "{}",
        preview.body
    );
    assert!(preview.body.contains(&project_op), "{}", preview.body);
    // Restoring it anyway: refused, with the conflicts, nothing changed.
    let path = format!("/trash/operation/{task_op}/restore");
    let confirm = get_with(addr, &path, &cookie);
    let csrf = csrf_of(&confirm.body);
    let refused = post(addr, &path, Some(&cookie), &form(&[("csrf", &csrf)]));
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("id=\"error\""), "{}", refused.body);
    assert!(refused.body.contains("public.projects"), "{}", refused.body);
    assert!(refused.body.contains(&project_op), "{}", refused.body);
    let live = |sql: &'static str| {
        let app = &app;
        async move { count(app, sql).await }
    };
    assert_eq!(live("SELECT count(*) FROM projects WHERE id = 2").await, 0);
    // The project first, then the task: both come back, as the admin.
    let path = format!("/trash/operation/{project_op}/restore");
    let done = post(addr, &path, Some(&cookie), &form(&[("csrf", &csrf)]));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Restored operation"), "{}", done.body);
    let path = format!("/trash/operation/{task_op}/restore");
    let done = post(addr, &path, Some(&cookie), &form(&[("csrf", &csrf)]));
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(live("SELECT count(*) FROM projects WHERE id = 2").await, 1);
    let restores = count(
        &owner,
        &format!(
            "SELECT count(*) FROM tombstone.restores WHERE actor = '{}'",
            p.admin
        ),
    )
    .await;
    assert_eq!(restores, 2);
    // Ids that are not ids are a 404, not an error from the database.
    assert_eq!(
        get_with(addr, "/trash/operation/1%27%3B--", &cookie).status,
        404
    );
    assert_eq!(get_with(addr, "/trash/action/abc", &cookie).status, 404);
}
