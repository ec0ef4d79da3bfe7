//! The trash page on the admin listener: log in (a bypass role's
//! PostgreSQL credentials or `admin.token`), list the trash (actions and
//! their operations within retention, newest first, filtered by table,
//! key, actor and time), preview a restore (what comes back per table, the
//! conflicts), and restore an operation or a whole action after a
//! confirmation, audited with the logged-in role as actor.
//!
//! Everything the page shows and does goes through `crate::ops` (the
//! functions the CLI uses) on the session's own connection. Security:
//! every page but `/login` needs a session; every request that changes
//! something is a POST carrying the session's CSRF token (compared in
//! constant time) from a page of the same origin (`Origin`, else
//! `Referer`); GETs change nothing; bodies are capped at [`BODY_LIMIT`];
//! responses forbid framing, caching and any script.

mod html;
mod login;
mod session;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use self::html::{Filters, Viewer};
use self::session::{Current, Sessions};
use super::AdminState;
use crate::ops::restore::{self, PreviewStatus, Target};
use crate::ops::trash::{self, Action, Filter, Since};

/// The largest request body the page reads (a login or a confirmation is
/// a few hundred bytes).
pub const BODY_LIMIT: usize = 16 * 1024;

struct Page {
    admin: Arc<AdminState>,
    sessions: Sessions,
}

/// The trash page's routes: `/`, `/login`, `/logout`, `/trash…`.
pub fn router(admin: Arc<AdminState>) -> Router {
    let state = Arc::new(Page {
        admin,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/", get(|| async { see_other("/trash") }))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/trash", get(list))
        .route("/trash/action/{id}", get(action_preview))
        .route(
            "/trash/action/{id}/restore",
            get(action_confirm).post(action_restore),
        )
        .route("/trash/operation/{id}", get(operation_preview))
        .route(
            "/trash/operation/{id}/restore",
            get(operation_confirm).post(operation_restore),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// An HTML response with the page's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(h);
    r
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn see_other(to: &'static str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    secure(r.headers_mut());
    r
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn session(state: &Page, headers: &HeaderMap) -> Option<Current> {
    let cookies = headers.get_all(header::COOKIE);
    cookies
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_id)
        .and_then(|id| state.sessions.get(id))
}

/// Whether a POST comes from a page of this listener: its `Origin` (or,
/// without one, its `Referer`) names the `Host` it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(host) = value(header::HOST) else {
        return false;
    };
    let ours = [format!("http://{host}"), format!("https://{host}")];
    if let Some(origin) = value(header::ORIGIN) {
        return ours.iter().any(|o| o == origin);
    }
    if let Some(referer) = value(header::REFERER) {
        return ours.iter().any(|o| {
            referer
                .strip_prefix(o.as_str())
                .is_some_and(|r| r.starts_with('/'))
        });
    }
    false
}

/// Why a POST is refused before it does anything.
fn refuse(status: StatusCode, why: &str) -> Response {
    let mut r = (status, format!("{why}\n")).into_response();
    secure(r.headers_mut());
    r
}

/// Why a state-changing request is refused: its status and reason.
type Refusal = (StatusCode, &'static str);

/// The session of a state-changing request, if its origin and CSRF token
/// are right; else the refusal ([`refuse`] makes it a response).
fn post_session(
    state: &Page,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Current, Refusal> {
    if !same_origin(headers) {
        return Err((
            StatusCode::FORBIDDEN,
            "refused: the request does not come from this page (Origin/Referer)",
        ));
    }
    let Some(s) = session(state, headers) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "not logged in (or the session expired): log in at /login",
        ));
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !session::constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) {
        return Err((
            StatusCode::FORBIDDEN,
            "refused: missing or wrong CSRF token (reload the page and try again)",
        ));
    }
    Ok(s)
}

async fn login_form(State(state): State<Arc<Page>>, headers: HeaderMap) -> Response {
    if session(&state, &headers).is_some() {
        return see_other("/trash");
    }
    html(
        StatusCode::OK,
        html::login(None, state.admin.config.admin.token.is_some()),
    )
}

async fn login_submit(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token_enabled = state.admin.config.admin.token.is_some();
    if !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            html::login(
                Some("refused: the form was not sent from this page"),
                token_enabled,
            ),
        );
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let config = &state.admin.config;
    let result = if !field("token").is_empty() {
        login::with_token(config, field("token")).await
    } else {
        login::with_password(config, field("role").trim(), field("password")).await
    };
    match result {
        Ok(l) => {
            let actor = l.actor.clone();
            match state.sessions.create(l.actor, l.client) {
                Some(id) => {
                    tracing::info!(actor = %actor, "trash page: logged in");
                    with_cookie(see_other("/trash"), &session::set_cookie(&id))
                }
                None => html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    html::login(Some("no random numbers for a session id"), token_enabled),
                ),
            }
        }
        Err(e) => {
            tracing::info!(reason = %e, "trash page: login refused");
            html(
                StatusCode::UNAUTHORIZED,
                html::login(Some(&format!("Login refused: {e}")), token_enabled),
            )
        }
    }
}

async fn logout(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    match post_session(&state, &headers, &form) {
        Ok(s) => {
            state.sessions.remove(&s.id);
            with_cookie(see_other("/login"), &session::clear_cookie())
        }
        Err((status, why)) => refuse(status, why),
    }
}

fn viewer(s: &Current) -> Viewer<'_> {
    Viewer {
        actor: &s.actor,
        csrf: &s.csrf,
    }
}

async fn list(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return see_other("/login");
    };
    let v = viewer(&s);
    match listed(&s, &filters).await {
        Ok(actions) => html(StatusCode::OK, html::trash(&v, &filters, &actions, None)),
        Err(e) => html(
            StatusCode::BAD_REQUEST,
            html::trash(&v, &filters, &[], Some(&e)),
        ),
    }
}

/// The trash under `filters`: table and time by `tombstone.trash_actions`,
/// key and actor here, on the operations it returns.
async fn listed(s: &Current, filters: &Filters) -> Result<Vec<Action>, String> {
    let nonempty = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
    let since = nonempty(&filters.since).map(|t| Since::parse(&t));
    if let Some(since) = &since {
        since.check(&s.client).await.map_err(|e| e.to_string())?;
    }
    let filter = Filter {
        table: nonempty(&filters.table),
        since,
    };
    let mut actions = trash::list(&s.client, &filter)
        .await
        .map_err(|e| e.to_string())?;
    let key = nonempty(&filters.key).map(|k| KeyFilter::parse(&k));
    let actor = nonempty(&filters.actor).map(|a| a.to_lowercase());
    if key.is_none() && actor.is_none() {
        return Ok(actions);
    }
    actions.retain(|a| {
        a.operations.iter().any(|op| {
            key.as_ref()
                .is_none_or(|k| op.keys.iter().any(|v| k.matches(v)))
                && actor.as_ref().is_none_or(|want| {
                    op.actor.to_lowercase().contains(want)
                        || op.login_role.to_lowercase().contains(want)
                })
        })
    });
    Ok(actions)
}

/// The key filter: a JSON object is compared whole (`{"id": 42}`),
/// anything else with each key column's value (`42`).
enum KeyFilter {
    Whole(serde_json::Value),
    Value(String),
}

impl KeyFilter {
    fn parse(text: &str) -> KeyFilter {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) => KeyFilter::Whole(v),
            _ => KeyFilter::Value(text.to_string()),
        }
    }

    fn matches(&self, key: &serde_json::Value) -> bool {
        match self {
            KeyFilter::Whole(v) => v == key,
            KeyFilter::Value(want) => key.as_object().is_some_and(|o| {
                o.values().any(|v| match v {
                    serde_json::Value::String(s) => s == want,
                    other => {
                        *other
                            == serde_json::from_str::<serde_json::Value>(want).unwrap_or_default()
                    }
                })
            }),
        }
    }
}

/// An action id is a transaction id: digits.
fn action_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// An operation id is a uuid: 32 hex digits and dashes.
fn operation_id(id: &str) -> Option<&str> {
    let hex = id.chars().filter(|c| *c != '-').count() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    hex.then_some(id)
}

fn not_found(v: &Viewer, what: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        html::refused(v, "Not found", what, None),
    )
}

async fn action_preview(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show_action(&state, &headers, &id, false).await
}

async fn action_confirm(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show_action(&state, &headers, &id, true).await
}

async fn show_action(state: &Page, headers: &HeaderMap, id: &str, confirm: bool) -> Response {
    let Some(s) = session(state, headers) else {
        return see_other("/login");
    };
    let v = viewer(&s);
    let Some(id) = action_id(id) else {
        return not_found(&v, "an action id is a number, as the trash shows it");
    };
    match restore::preview_action(&s.client, id).await {
        Ok(p) => html(StatusCode::OK, html::action_preview(&v, &p, confirm)),
        Err(e) => html(
            StatusCode::BAD_REQUEST,
            html::refused(&v, &format!("Action {id}"), &e.to_string(), None),
        ),
    }
}

async fn action_restore(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match post_session(&state, &headers, &form) {
        Ok(s) => s,
        Err((status, why)) => return refuse(status, why),
    };
    let v = viewer(&s);
    let Some(id) = action_id(&id) else {
        return not_found(&v, "an action id is a number, as the trash shows it");
    };
    match restore::restore_action(&s.client, id, Some(&s.actor)).await {
        Ok(o) => {
            tracing::info!(actor = %s.actor, action = id, rows = o.rows, "trash page: restored an action");
            html(StatusCode::OK, html::action_restored(&v, &o))
        }
        Err(e) => {
            let found = restore::preview_action(&s.client, id).await.ok();
            let found = found
                .as_ref()
                .filter(|p| p.status == PreviewStatus::Conflicts)
                .map(|p| (p.conflicts.as_slice(), p.unchecked.as_slice()));
            html(
                StatusCode::CONFLICT,
                html::refused(
                    &v,
                    &format!("Action {id} was not restored"),
                    &e.to_string(),
                    found,
                ),
            )
        }
    }
}

async fn operation_preview(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show_operation(&state, &headers, &id, false).await
}

async fn operation_confirm(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show_operation(&state, &headers, &id, true).await
}

async fn show_operation(state: &Page, headers: &HeaderMap, id: &str, confirm: bool) -> Response {
    let Some(s) = session(state, headers) else {
        return see_other("/login");
    };
    let v = viewer(&s);
    let Some(id) = operation_id(id) else {
        return not_found(&v, "an operation id is a uuid, as the trash shows it");
    };
    match restore::preview(&s.client, &Target::Operation(id.to_string())).await {
        Ok(p) => html(StatusCode::OK, html::operation_preview(&v, id, &p, confirm)),
        Err(e) => html(
            StatusCode::BAD_REQUEST,
            html::refused(&v, &format!("Operation {id}"), &e.to_string(), None),
        ),
    }
}

async fn operation_restore(
    State(state): State<Arc<Page>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match post_session(&state, &headers, &form) {
        Ok(s) => s,
        Err((status, why)) => return refuse(status, why),
    };
    let v = viewer(&s);
    let Some(id) = operation_id(&id) else {
        return not_found(&v, "an operation id is a uuid, as the trash shows it");
    };
    let target = Target::Operation(id.to_string());
    match restore::restore(&s.client, &target, Some(&s.actor)).await {
        Ok(o) => {
            tracing::info!(actor = %s.actor, operation = id, rows = o.rows, "trash page: restored an operation");
            html(StatusCode::OK, html::operation_restored(&v, &o))
        }
        Err(e) => {
            let found = restore::preview(&s.client, &target).await.ok();
            let found = found
                .as_ref()
                .filter(|p| p.status == PreviewStatus::Conflicts)
                .map(|p| (p.conflicts.as_slice(), p.unchecked.as_slice()));
            html(
                StatusCode::CONFLICT,
                html::refused(
                    &v,
                    &format!("Operation {id} was not restored"),
                    &e.to_string(),
                    found,
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_filter() {
        let key = serde_json::json!({"id": 42, "tenant": "a"});
        assert!(KeyFilter::parse("42").matches(&key));
        assert!(KeyFilter::parse("a").matches(&key));
        assert!(!KeyFilter::parse("4").matches(&key));
        assert!(KeyFilter::parse(r#"{"tenant": "a", "id": 42}"#).matches(&key));
        assert!(!KeyFilter::parse(r#"{"id": 42}"#).matches(&key));
    }

    #[test]
    fn ids_are_checked() {
        assert!(action_id("12345").is_some());
        assert!(action_id("12a").is_none());
        assert!(operation_id("178684cb-0000-4000-8000-000000000000").is_some());
        assert!(operation_id("178684cb").is_none());
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9187"));
        assert!(!same_origin(&h));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:9187/trash"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9187"),
        );
        assert!(same_origin(&h));
        let mut h2 = HeaderMap::new();
        h2.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9187"));
        h2.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:91870/x"),
        );
        assert!(!same_origin(&h2));
    }
}
