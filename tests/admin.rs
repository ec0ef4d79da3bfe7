//! The admin listener (`[admin] address`): `/health` and `/ready`.

mod common;

use std::net::SocketAddr;

use common::protected::Protected;
use common::{Proxy, ProxyOptions, free_port, http};

fn admin_toml(port: u16) -> String {
    format!("[admin]\naddress = \"127.0.0.1:{port}\"\n")
}

#[test]
fn health_and_ready_on_a_protected_database() {
    let port = free_port();
    let p = Protected::start("admin_ready", 1, &admin_toml(port));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let health = http::get(addr, "/health");
    assert_eq!(health.status, 200, "{}", health.body);
    let ready = http::get(addr, "/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("schema loaded"), "{}", ready.body);
    assert!(ready.body.contains(&p.db.name), "{}", ready.body);
    assert_eq!(http::get(addr, "/nosuch").status, 404);
}

#[test]
fn not_ready_while_the_upstream_is_down() {
    let port = free_port();
    let dead = free_port();
    let _proxy = Proxy::start_with(ProxyOptions {
        extra_toml: admin_toml(port),
        upstream: Some(("127.0.0.1".into(), dead)),
        ..Default::default()
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(http::get(addr, "/health").status, 200);
    let ready = http::get(addr, "/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        ready.body
    );
}

#[test]
fn no_listener_without_the_key() {
    let proxy = Proxy::start();
    assert!(!proxy.log().contains("admin listener"), "{}", proxy.log());
}
