//! The admin HTTP listener (`[admin] address`): `/health` (the process
//! answers), `/ready` (the upstream answers and, on a protected database,
//! the schema is loaded), `/metrics` (Prometheus text format, `metrics.rs`). Off by default; it binds where the operator says
//! and nowhere else.
//!
//! Handlers read shared state and the database; they never touch a
//! session. Errors become HTTP status codes with a plain-text reason.

mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

mod page;

use crate::config::Config;
use crate::protect::Protection;

/// How long `/ready` waits for the upstream before it says no.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// What the admin handlers share.
pub struct AdminState {
    pub config: Arc<Config>,
    /// Present when `database.url` names a protected database.
    pub protection: Option<Arc<Protection>>,
    /// The process's metrics, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The admin routes over `state`.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::metrics))
        .with_state(state.clone())
        .merge(page::router(state))
}

/// Binds `[admin] address` (an error names the key) and returns the task
/// that serves it until the process ends.
pub async fn bind(
    state: Arc<AdminState>,
) -> Result<Option<impl Future<Output = ()> + use<>>, String> {
    let Some(address) = state.config.admin.address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("admin.address: cannot listen on {address}: {e}"))?;
    tracing::info!(admin = %address, "admin listener");
    let app = router(state);
    Ok(Some(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "admin listener stopped");
        }
    }))
}

/// `n` bytes from the system's secure generator, as hex (session ids, CSRF
/// tokens, the demo's page token, the login probe's wrong password);
/// `None` if the generator fails.
pub fn random_hex(n: usize) -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn health() -> &'static str {
    "ok\n"
}

/// 200 when the upstream answers a query (or, relaying only, accepts a
/// connection) and the protected schema is loaded; 503 with the reason
/// otherwise.
async fn ready(State(state): State<Arc<AdminState>>) -> Response {
    match tokio::time::timeout(READY_TIMEOUT, check_ready(&state)).await {
        Ok(Ok(detail)) => (StatusCode::OK, detail).into_response(),
        Ok(Err(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the upstream did not answer within {READY_TIMEOUT:?}\n"),
        )
            .into_response(),
    }
}

async fn check_ready(state: &AdminState) -> Result<String, String> {
    let config = &state.config;
    match &config.database.url {
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("database: {}", crate::pg_error::describe(&e)))?;
            let conn = tokio::spawn(connection);
            let row = client
                .query_one("SELECT 1", &[])
                .await
                .map_err(|e| format!("database: {}", crate::pg_error::describe(&e)));
            drop(client);
            let _ = conn.await;
            row?;
            let Some(p) = &state.protection else {
                return Err("the protected schema is not loaded".into());
            };
            let generation = p.current();
            Ok(format!(
                "ready: database {} answers; schema loaded ({} protected tables)\n",
                p.database,
                generation.snapshot.tables().len()
            ))
        }
        None => {
            let address = format!("{}:{}", config.upstream.host, config.upstream.port);
            tokio::net::TcpStream::connect(&address)
                .await
                .map_err(|e| format!("upstream {address}: {e}"))?;
            Ok(format!(
                "ready: upstream {address} accepts connections (relay only)\n"
            ))
        }
    }
}
