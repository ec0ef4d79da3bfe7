//! The trash page's HTML: server-rendered, no script, one inline style
//! sheet. Every value that comes from the database or the request (table
//! names, keys, actors, messages) goes through [`esc`].

use std::fmt::Write;

use crate::ops::TableCount;
use crate::ops::restore::{
    ActionOutcome, ActionPreview, Conflict, OperationRows, Outcome, Preview, PreviewStatus, Status,
    Unchecked,
};
use crate::ops::trash::{Action, Entry};

/// `text` safe inside HTML text and double- or single-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a URL query component.
pub fn url_component(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.error{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}\
header{display:flex;gap:1em;align-items:center;border-bottom:1px solid #ccc;margin-bottom:1em}\
code{font-size:.95em}form.inline{display:inline}";

/// Who is logged in, for the header's logout button.
pub struct Viewer<'a> {
    pub actor: &'a str,
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let mut header = String::from("<header><h1>tombstone trash</h1>");
    if let Some(v) = viewer {
        let _ = write!(
            header,
            "<a href=\"/trash\">trash</a><span>logged in as <b id=\"whoami\">{}</b></span>\
             <form class=\"inline\" method=\"post\" action=\"/logout\">{}<button type=\"submit\" id=\"logout\">Log out</button></form>",
            esc(v.actor),
            csrf_field(v.csrf)
        );
    }
    header.push_str("</header>");
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · tombstone</title>\
         <style>{STYLE}</style></head><body>{header}{body}</body></html>",
        esc(title)
    )
}

fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// The login form, with why the last attempt failed.
pub fn login(error: Option<&str>, token_enabled: bool) -> String {
    let mut body = String::new();
    if let Some(e) = error {
        let _ = write!(body, "<p class=\"error\" id=\"error\">{}</p>", esc(e));
    }
    body.push_str(
        "<form method=\"post\" action=\"/login\" id=\"login\">\
         <p>Log in as a PostgreSQL role that is a member of a bypass role (<code>roles.bypass</code>).</p>\
         <p><label>Role <input name=\"role\" id=\"role\" autocomplete=\"username\"></label></p>\
         <p><label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\"></label></p>",
    );
    if token_enabled {
        body.push_str(
            "<p>or with <code>admin.token</code>: <label>Token <input name=\"token\" id=\"token\" type=\"password\"></label></p>",
        );
    }
    body.push_str("<p><button type=\"submit\" id=\"submit\">Log in</button></p></form>");
    page("Log in", None, &body)
}

/// The filters the trash was listed with, as the form shows them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Filters {
    pub table: String,
    pub key: String,
    pub actor: String,
    pub since: String,
}

/// The trash: the filter form, then every action, newest first, with its
/// operations and their rows per table.
pub fn trash(
    viewer: &Viewer,
    filters: &Filters,
    actions: &[Action],
    error: Option<&str>,
) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/trash\" id=\"filters\">\
         <label>Table <input name=\"table\" id=\"f-table\" value=\"{}\"></label> \
         <label>Key <input name=\"key\" id=\"f-key\" value=\"{}\" placeholder='42 or {{\"id\": 42}}'></label> \
         <label>Actor <input name=\"actor\" id=\"f-actor\" value=\"{}\"></label> \
         <label>Since <input name=\"since\" id=\"f-since\" value=\"{}\" placeholder=\"2h, 7d or a timestamp\"></label> \
         <button type=\"submit\" id=\"filter\">Filter</button> <a href=\"/trash\">clear</a></form>",
        esc(&filters.table),
        esc(&filters.key),
        esc(&filters.actor),
        esc(&filters.since)
    );
    if let Some(e) = error {
        let _ = write!(body, "<p class=\"error\" id=\"error\">{}</p>", esc(e));
    }
    if actions.is_empty() && error.is_none() {
        body.push_str("<p id=\"empty\">Nothing in the trash matches.</p>");
    }
    for a in actions {
        let _ = write!(
            body,
            "<section class=\"action\" id=\"action-{id}\"><h2>Action <a href=\"/trash/action/{id}\">{id}</a> \
             <small>{when} by {actor} (login {login}) · {n} operation{s}</small></h2>",
            id = esc(&a.id),
            when = esc(&a.deleted_at),
            actor = esc(&a.actor),
            login = esc(&a.login_role),
            n = a.operations.len(),
            s = if a.operations.len() == 1 { "" } else { "s" },
        );
        body.push_str(
            "<table><tr><th>operation</th><th>table</th><th>keys</th><th>rows</th><th>per table</th><th>actor</th></tr>",
        );
        for op in &a.operations {
            operation_row(&mut body, op);
        }
        body.push_str("</table></section>");
    }
    page("Trash", Some(viewer), &body)
}

fn operation_row(body: &mut String, op: &Entry) {
    let keys: Vec<String> = op.keys.iter().map(|k| esc(&k.to_string())).collect();
    let more = if op.target_rows > op.keys.len() as i64 {
        " …"
    } else {
        ""
    };
    let cascaded: Vec<String> = op
        .cascaded
        .iter()
        .map(|(t, n)| format!("{}: {n}", esc(t)))
        .collect();
    let _ = write!(
        body,
        "<tr class=\"operation\"><td><a href=\"/trash/operation/{id}\">{id}</a></td><td>{table}</td>\
         <td class=\"keys\">{keys}{more}</td><td>{rows}</td><td>{cascaded}</td><td>{actor}</td></tr>",
        id = esc(&op.operation),
        table = esc(&op.table),
        keys = keys.join("<br>"),
        rows = op.target_rows,
        cascaded = cascaded.join("<br>"),
        actor = esc(&op.actor),
    );
}

fn counts(body: &mut String, tables: &[TableCount]) {
    if tables.is_empty() {
        return;
    }
    body.push_str("<table class=\"counts\"><tr><th>table</th><th>what</th><th>rows</th></tr>");
    for t in tables {
        let what = match t.action.as_str() {
            "soft_delete" => "undeleted",
            "set_null" => "foreign key put back",
            other => other,
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.table),
            esc(what),
            t.rows
        );
    }
    body.push_str("</table>");
}

fn status_line(body: &mut String, status: &PreviewStatus) {
    match status {
        PreviewStatus::Ready => {
            body.push_str("<p class=\"ok\" id=\"status\">Ready: no conflict.</p>");
        }
        PreviewStatus::Conflicts => body.push_str(
            "<p class=\"error\" id=\"status\">A restore would fail now: see the conflicts.</p>",
        ),
        PreviewStatus::AlreadyRestored { at, by } => {
            let _ = write!(
                body,
                "<p id=\"status\">Already restored at {} by {}: a restore would change nothing.</p>",
                esc(at),
                esc(by)
            );
        }
    }
}

fn conflicts(body: &mut String, conflicts: &[Conflict], unchecked: &[Unchecked]) {
    if !conflicts.is_empty() {
        body.push_str("<h3>Conflicts</h3><ul id=\"conflicts\">");
        for c in conflicts {
            match c {
                Conflict::Unique {
                    table,
                    key,
                    index,
                    index_key,
                    holder,
                    holder_restored,
                } => {
                    let _ = write!(
                        body,
                        "<li>{} {}: unique index {} key {} is held by {} {}</li>",
                        esc(table),
                        esc(&key.to_string()),
                        esc(index),
                        esc(index_key),
                        if *holder_restored {
                            "another row this restore brings back,"
                        } else {
                            "live row"
                        },
                        esc(&holder.to_string())
                    );
                }
                Conflict::ParentDeleted {
                    table,
                    key,
                    parent_table,
                    parent_key,
                    deleted_by,
                    deleted_by_action,
                    same_action,
                    ..
                } => {
                    let by = match (deleted_by, deleted_by_action) {
                        (Some(op), Some(action)) => format!(
                            "by operation <a href=\"/trash/operation/{op}\">{op}</a> of action <a href=\"/trash/action/{action}\">{action}</a>",
                            op = esc(op),
                            action = esc(action)
                        ),
                        (Some(op), None) => format!(
                            "by operation <a href=\"/trash/operation/{op}\">{op}</a>",
                            op = esc(op)
                        ),
                        _ => "by no recorded operation".to_string(),
                    };
                    let _ = write!(
                        body,
                        "<li>{} {}: its parent {} {} is still deleted, {by}{}</li>",
                        esc(table),
                        esc(&key.to_string()),
                        esc(parent_table),
                        esc(&parent_key.to_string()),
                        if *same_action {
                            " (the same action: restore the whole action)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        body.push_str("</ul>");
    }
    if !unchecked.is_empty() {
        body.push_str("<h3>Not checked</h3><ul>");
        for u in unchecked {
            let _ = write!(
                body,
                "<li>{} index {}: {} (PostgreSQL still enforces it)</li>",
                esc(&u.table),
                esc(&u.index),
                esc(&u.reason)
            );
        }
        body.push_str("</ul>");
    }
}

fn operation_rows(body: &mut String, op: &OperationRows) {
    let _ = write!(
        body,
        "<h3>Operation <a href=\"/trash/operation/{id}\">{id}</a> on {table}: {rows} row{s}</h3>",
        id = esc(&op.operation),
        table = esc(&op.table),
        rows = op.rows,
        s = if op.rows == 1 { "" } else { "s" }
    );
    counts(body, &op.tables);
}

/// What restoring an action would bring back. With `confirm`, the
/// confirmation form; else a link to it.
pub fn action_preview(viewer: &Viewer, p: &ActionPreview, confirm: bool) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h2>{} action {}</h2>",
        if confirm { "Restore" } else { "Preview of" },
        esc(&p.action)
    );
    status_line(&mut body, &p.status);
    let _ = write!(
        body,
        "<p>A restore brings back <b id=\"rows\">{}</b> rows in {} operation{}, parents first, in one transaction.</p>",
        p.rows,
        p.operations.len(),
        if p.operations.len() == 1 { "" } else { "s" }
    );
    for op in &p.operations {
        operation_rows(&mut body, op);
    }
    if !p.app_set_null.is_empty() {
        body.push_str("<h3>Foreign keys the application set to NULL, put back</h3>");
        counts(&mut body, &p.app_set_null);
    }
    for (op, table) in &p.earlier {
        let _ = write!(
            body,
            "<p>Operation {} on {} was restored before.</p>",
            esc(op),
            esc(table)
        );
    }
    conflicts(&mut body, &p.conflicts, &p.unchecked);
    restore_controls(
        &mut body,
        viewer,
        &format!("/trash/action/{}", url_component(&p.action)),
        &p.status,
        confirm,
    );
    page(&format!("Action {}", p.action), Some(viewer), &body)
}

/// What restoring one operation would bring back (and, with `confirm`,
/// the confirmation form).
pub fn operation_preview(viewer: &Viewer, id: &str, p: &Preview, confirm: bool) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h2>{} operation {}</h2>",
        if confirm { "Restore" } else { "Preview of" },
        esc(id)
    );
    status_line(&mut body, &p.status);
    operation_rows(&mut body, &p.restores);
    if let Some(a) = &p.action
        && a.operations > 1
    {
        let _ = write!(
            body,
            "<p id=\"part-of\">Part of action <a href=\"/trash/action/{id}\">{id}</a> ({} operations, {} still deleted): restoring the action brings them all back in one step.</p>",
            a.operations,
            a.pending,
            id = esc(&a.id)
        );
    }
    conflicts(&mut body, &p.conflicts, &p.unchecked);
    restore_controls(
        &mut body,
        viewer,
        &format!("/trash/operation/{}", url_component(id)),
        &p.status,
        confirm,
    );
    page(&format!("Operation {id}"), Some(viewer), &body)
}

fn restore_controls(
    body: &mut String,
    viewer: &Viewer,
    base: &str,
    status: &PreviewStatus,
    confirm: bool,
) {
    if matches!(status, PreviewStatus::AlreadyRestored { .. }) {
        return;
    }
    if confirm {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{base}/restore\" id=\"confirm-form\">{}\
             <p>Restore it now, audited as <b>{}</b>?</p>\
             <button type=\"submit\" id=\"confirm\">Yes, restore</button> <a href=\"{base}\" id=\"cancel\">Cancel</a></form>",
            csrf_field(viewer.csrf),
            esc(viewer.actor),
        );
    } else {
        let _ = write!(
            body,
            "<p><a href=\"{base}/restore\" id=\"restore\">Restore…</a> (asks for confirmation)</p>"
        );
    }
}

/// An action's restore, done.
pub fn action_restored(viewer: &Viewer, o: &ActionOutcome) -> String {
    let mut body = String::new();
    match &o.status {
        Status::Restored => {
            let _ = write!(
                body,
                "<p class=\"ok\" id=\"result\">Restored action {}: {} rows back in {} operations, audited as {}.</p>",
                esc(&o.action),
                o.rows,
                o.restored.len(),
                esc(viewer.actor)
            );
        }
        Status::AlreadyRestored { at, by } => {
            let _ = write!(
                body,
                "<p id=\"result\">Action {} was restored before, at {} by {}; nothing changed.</p>",
                esc(&o.action),
                esc(at),
                esc(by)
            );
        }
    }
    for op in &o.restored {
        outcome_rows(&mut body, op);
    }
    if !o.app_set_null.is_empty() {
        body.push_str("<h3>Foreign keys the application set to NULL, put back</h3>");
        counts(&mut body, &o.app_set_null);
    }
    body.push_str("<p><a href=\"/trash\">Back to the trash</a></p>");
    page("Restored", Some(viewer), &body)
}

/// One operation's restore, done.
pub fn operation_restored(viewer: &Viewer, o: &Outcome) -> String {
    let mut body = String::new();
    match &o.status {
        Status::Restored => {
            let _ = write!(
                body,
                "<p class=\"ok\" id=\"result\">Restored operation {}: {} rows back, audited as {}.</p>",
                esc(&o.operation),
                o.rows,
                esc(viewer.actor)
            );
        }
        Status::AlreadyRestored { at, by } => {
            let _ = write!(
                body,
                "<p id=\"result\">Operation {} was restored before, at {} by {}; nothing changed.</p>",
                esc(&o.operation),
                esc(at),
                esc(by)
            );
        }
    }
    outcome_rows(&mut body, o);
    body.push_str("<p><a href=\"/trash\">Back to the trash</a></p>");
    page("Restored", Some(viewer), &body)
}

fn outcome_rows(body: &mut String, o: &Outcome) {
    let _ = write!(
        body,
        "<h3>Operation {} on {}: {} rows</h3>",
        esc(&o.operation),
        esc(&o.table),
        o.rows
    );
    counts(body, &o.tables);
}

/// A refusal (a restore that failed, a preview that could not be made),
/// with the conflicts a fresh preview finds, if any.
pub fn refused(
    viewer: &Viewer,
    title: &str,
    message: &str,
    found: Option<(&[Conflict], &[Unchecked])>,
) -> String {
    let mut body = format!(
        "<h2>{}</h2><p class=\"error\" id=\"error\">{}</p>",
        esc(title),
        esc(message)
    );
    if let Some((c, u)) = found {
        conflicts(&mut body, c, u);
    }
    body.push_str("<p><a href=\"/trash\">Back to the trash</a></p>");
    page(title, Some(viewer), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn url_components() {
        assert_eq!(url_component("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
