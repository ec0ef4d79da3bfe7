//! The cascade of a soft delete: the plan's steps (which, in which order)
//! and snapshots of the SQL they render to.

use expect_test::{Expect, expect};

use super::*;
use crate::rewrite::cascade::{CascadePlan, Rows, SetValue, Step};
use crate::schema::TableId;

fn id(snap: &SchemaSnapshot, qualified: &str) -> TableId {
    let (schema, name) = qualified.split_once('.').unwrap_or(("public", qualified));
    match snap.lookup(schema, name) {
        Some(id) => id,
        None => panic!("no table {qualified}"),
    }
}

/// The steps of a DELETE on `table`.
fn steps(snap: &SchemaSnapshot, table: &str) -> Vec<Step> {
    let plan = CascadePlan::build(snap, id(snap, table)).unwrap_or_else(|e| panic!("{e}"));
    plan.steps(snap).unwrap_or_else(|e| panic!("{e}"))
}

/// One line per step: its CTE (or role), tables, edges and row sources.
fn describe(snap: &SchemaSnapshot, steps: &[Step]) -> Vec<String> {
    let t = |id: TableId| {
        let t = snap.table(id);
        format!("{}.{}", t.schema, t.name)
    };
    let fk = |i: usize| snap.foreign_keys()[i].name.clone();
    let rows = |r: Rows| match r {
        Rows::Target => "target".to_string(),
        Rows::TargetTree => "target tree".to_string(),
        Rows::Deleted(n) => format!("d{n}"),
    };
    steps
        .iter()
        .map(|s| match s {
            Step::Target { table, keys } => format!("target {} keys {}", t(*table), keys.join(",")),
            Step::TargetTree { table, edges } => format!(
                "tree {} along {}",
                t(*table),
                edges.iter().map(|&e| fk(e)).collect::<Vec<_>>().join(",")
            ),
            Step::SoftDelete {
                n,
                table,
                parents,
                self_edges,
                returning,
            } => format!(
                "d{n} {} from {}{}{}",
                t(*table),
                parents
                    .iter()
                    .map(|&(e, r)| format!("{} via {}", rows(r), fk(e)))
                    .collect::<Vec<_>>()
                    .join(" or "),
                self_edges
                    .iter()
                    .map(|&e| format!(" and descendants along {}", fk(e)))
                    .collect::<String>(),
                if returning.is_empty() {
                    String::new()
                } else {
                    format!(" returning {}", returning.join(","))
                }
            ),
            Step::SetColumns {
                n,
                fk: e,
                parent,
                columns,
                value,
            } => format!(
                "n{n} {} set {} to {} from {} via {}",
                t(snap.foreign_keys()[*e].child),
                columns.join(","),
                match value {
                    SetValue::Null => "NULL",
                    SetValue::Default => "DEFAULT",
                },
                rows(*parent),
                fk(*e)
            ),
            Step::Restrict {
                n,
                fk: e,
                parent,
                exempt,
            } => format!(
                "r{n} {} via {} from {}{}",
                t(snap.foreign_keys()[*e].child),
                fk(*e),
                rows(*parent),
                exempt
                    .map(|r| format!(" except {}", rows(r)))
                    .unwrap_or_default()
            ),
            Step::OperationHint { table } => format!("hint {}", t(*table)),
        })
        .collect()
}

/// The statement `sql` becomes on `snap`, one CTE per line.
fn rendered(snap: &SchemaSnapshot, sql: &str) -> String {
    let out = match rewrite(sql, snap, &session()) {
        Ok(r) => r.sql.into_owned(),
        Err(e) => panic!("rewrite of {sql:?} failed: {e}"),
    };
    assert!(
        pg_query::parse(&out, 0).is_ok(),
        "output does not parse: {out}"
    );
    out
}

#[track_caller]
fn snapshot(snap: &SchemaSnapshot, sql: &str, expected: Expect) {
    expected.assert_eq(&rendered(snap, sql));
}

/// `folders` is a tree (`parent_id`, ON DELETE CASCADE) inside `drives`;
/// `files` hang off folders.
fn tree() -> SchemaSnapshot {
    use FkAction::*;
    let ts = "deleted_at timestamp with time zone";
    let cat = Catalog::default()
        .table("public.drives", &["id bigint", ts], &["id"])
        .table(
            "public.folders",
            &["id bigint", "drive_id bigint", "parent_id bigint", ts],
            &["id"],
        )
        .table(
            "public.files",
            &["id bigint", "folder_id bigint", ts],
            &["id"],
        )
        .fk(
            "folders_drive_id_fkey",
            "folders",
            &["drive_id"],
            "drives",
            &["id"],
            Cascade,
        )
        .fk(
            "folders_parent_id_fkey",
            "folders",
            &["parent_id"],
            "folders",
            &["id"],
            Cascade,
        )
        .fk(
            "files_folder_id_fkey",
            "files",
            &["folder_id"],
            "folders",
            &["id"],
            Cascade,
        );
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

/// Multi-tenant composite keys: `tickets(tenant_id, id)`, a tree whose
/// `parent_id` is NO ACTION (a check on the target itself); `notes` ON
/// DELETE SET NULL (ticket_id) (a PostgreSQL 15 column list), `links` SET
/// DEFAULT (unprotected, no key), `holds` RESTRICT, `steps` CASCADE, and
/// `checks` CASCADE from steps but RESTRICT on tickets (its rows deleted by
/// the same statement are no violation).
fn tenants() -> SchemaSnapshot {
    use FkAction::*;
    let ts = "deleted_at timestamp with time zone";
    let mut cat = Catalog::default()
        .table(
            "public.tickets",
            &["tenant_id bigint", "id bigint", "parent_id bigint", ts],
            &["tenant_id", "id"],
        )
        .table(
            "public.notes",
            &["id bigint", "tenant_id bigint", "ticket_id bigint", ts],
            &["id"],
        )
        .table(
            "public.links",
            &["tenant_id bigint", "ticket_id bigint"],
            &[],
        )
        .table(
            "public.holds",
            &["id bigint", "tenant_id bigint", "ticket_id bigint", ts],
            &["id"],
        )
        .table(
            "public.steps",
            &["id bigint", "tenant_id bigint", "ticket_id bigint", ts],
            &["id"],
        )
        .table(
            "public.checks",
            &[
                "id bigint",
                "step_id bigint",
                "tenant_id bigint",
                "ticket_id bigint",
                ts,
            ],
            &["id"],
        )
        .fk(
            "notes_ticket_fkey",
            "notes",
            &["tenant_id", "ticket_id"],
            "tickets",
            &["tenant_id", "id"],
            SetNull,
        )
        .fk(
            "tickets_parent_fkey",
            "tickets",
            &["tenant_id", "parent_id"],
            "tickets",
            &["tenant_id", "id"],
            NoAction,
        )
        .fk(
            "links_ticket_fkey",
            "links",
            &["tenant_id", "ticket_id"],
            "tickets",
            &["tenant_id", "id"],
            SetDefault,
        )
        .fk(
            "holds_ticket_fkey",
            "holds",
            &["tenant_id", "ticket_id"],
            "tickets",
            &["tenant_id", "id"],
            Restrict,
        )
        .fk(
            "steps_ticket_fkey",
            "steps",
            &["tenant_id", "ticket_id"],
            "tickets",
            &["tenant_id", "id"],
            Cascade,
        )
        .fk(
            "checks_step_fkey",
            "checks",
            &["step_id"],
            "steps",
            &["id"],
            Cascade,
        )
        .fk(
            "checks_ticket_fkey",
            "checks",
            &["tenant_id", "ticket_id"],
            "tickets",
            &["tenant_id", "id"],
            Restrict,
        );
    cat.foreign_keys[0].set_columns = vec!["ticket_id".into()];
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

#[test]
fn sql_of_the_scenario_project_delete() {
    snapshot(
        &scenario(),
        "DELETE FROM projects WHERE id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT projects.id AS tombstone_k1 FROM projects WHERE (id = 1) AND projects.deleted_at IS NULL FOR UPDATE OF projects),
             tombstone_d1 AS (UPDATE public.project_members AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.project_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1))),
             tombstone_d2 AS (UPDATE public.tasks AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.project_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1)) RETURNING tombstone_c.id),
             tombstone_d3 AS (UPDATE public.documents AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.project_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1)) RETURNING tombstone_c.id),
             tombstone_d4 AS (UPDATE billing.invoices AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.project_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1))),
             tombstone_d5 AS (UPDATE public.comments AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d2 tombstone_p WHERE tombstone_c.task_id OPERATOR(pg_catalog.=) tombstone_p.id))),
             tombstone_d6 AS (UPDATE public.attachments AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d2 tombstone_p WHERE tombstone_c.task_id OPERATOR(pg_catalog.=) tombstone_p.id))),
             tombstone_d7 AS (UPDATE public.time_entries AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d2 tombstone_p WHERE tombstone_c.task_id OPERATOR(pg_catalog.=) tombstone_p.id))),
             tombstone_d8 AS (UPDATE public.document_versions AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d3 tombstone_p WHERE tombstone_c.document_id OPERATOR(pg_catalog.=) tombstone_p.id)))
        UPDATE projects SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE projects.deleted_at IS NULL AND projects.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'projects', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

#[test]
fn sql_of_a_user_delete_sets_null_and_cascades_composite_keys() {
    snapshot(
        &scenario(),
        "DELETE FROM users WHERE id = $1",
        expect![[r#"
        WITH tombstone_target AS (SELECT users.id AS tombstone_k1 FROM users WHERE (id = $1) AND users.deleted_at IS NULL FOR UPDATE OF users),
             tombstone_d1 AS (UPDATE public.team_members AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.user_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1))),
             tombstone_d2 AS (UPDATE public.project_members AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.user_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1))),
             tombstone_n1 AS (UPDATE public.projects AS tombstone_c SET owner_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.owner_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.deleted_at IS NULL),
             tombstone_n2 AS (UPDATE public.tasks AS tombstone_c SET assignee_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.assignee_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.deleted_at IS NULL),
             tombstone_n3 AS (UPDATE public.comments AS tombstone_c SET author_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.author_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.deleted_at IS NULL),
             tombstone_n4 AS (UPDATE public.time_entries AS tombstone_c SET user_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.user_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.deleted_at IS NULL)
        UPDATE users SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE users.deleted_at IS NULL AND users.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'users', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

#[test]
fn sql_of_a_restricted_delete() {
    snapshot(
        &scenario(),
        "DELETE FROM categories WHERE id = 3",
        expect![[r#"
        WITH tombstone_target AS (SELECT categories.id AS tombstone_k1 FROM categories WHERE (id = 3) AND categories.deleted_at IS NULL FOR UPDATE OF categories),
             tombstone_r1 AS (SELECT 1 FROM (SELECT tombstone_c.category_id AS v1 FROM public.projects AS tombstone_c JOIN tombstone_target tombstone_p ON tombstone_c.category_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 WHERE tombstone_c.deleted_at IS NULL LIMIT 1) tombstone_v WHERE tombstone.fk_violation('categories', 'projects_category_id_fkey', 'projects', 'id', pg_catalog.concat_ws(', ', tombstone_v.v1)))
        UPDATE categories SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE categories.deleted_at IS NULL AND categories.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND NOT EXISTS (SELECT 1 FROM tombstone_r1) AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'categories', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

#[test]
fn sql_of_a_self_referencing_target() {
    snapshot(
        &tree(),
        "DELETE FROM folders f WHERE f.id = $1 RETURNING f.id",
        expect![[r#"
            WITH tombstone_target AS (SELECT f.id AS tombstone_k1 FROM folders f WHERE (f.id = $1) AND f.deleted_at IS NULL FOR UPDATE OF f),
                 tombstone_s AS (UPDATE public.folders AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT tombstone_y.id FROM public.folders tombstone_y, (SELECT tombstone_k1 AS id FROM tombstone_target) tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_id OPERATOR(pg_catalog.=) tombstone_p.id)) UNION SELECT tombstone_y.id FROM public.folders tombstone_y, tombstone_r tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_id OPERATOR(pg_catalog.=) tombstone_p.id))) SELECT id FROM tombstone_r) tombstone_q WHERE tombstone_q.id OPERATOR(pg_catalog.=) tombstone_c.id) AND NOT EXISTS (SELECT 1 FROM (SELECT tombstone_k1 AS id FROM tombstone_target) tombstone_x WHERE tombstone_x.id OPERATOR(pg_catalog.=) tombstone_c.id) RETURNING tombstone_c.id),
                 tombstone_d1 AS (UPDATE public.files AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM (SELECT tombstone_k1 AS id FROM tombstone_target UNION ALL SELECT id FROM tombstone_s) tombstone_p WHERE tombstone_c.folder_id OPERATOR(pg_catalog.=) tombstone_p.id)))
            UPDATE folders f SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE f.deleted_at IS NULL AND f.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'folders', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL RETURNING f.id"#]],
    );
}

#[test]
fn sql_of_a_self_referencing_child() {
    snapshot(
        &tree(),
        "DELETE FROM drives WHERE id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT drives.id AS tombstone_k1 FROM drives WHERE (id = 1) AND drives.deleted_at IS NULL FOR UPDATE OF drives),
             tombstone_d1 AS (UPDATE public.folders AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT tombstone_y.id FROM public.folders tombstone_y WHERE tombstone_y.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_y.drive_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1)) UNION SELECT tombstone_y.id FROM public.folders tombstone_y, tombstone_r tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_id OPERATOR(pg_catalog.=) tombstone_p.id))) SELECT id FROM tombstone_r) tombstone_q WHERE tombstone_q.id OPERATOR(pg_catalog.=) tombstone_c.id) RETURNING tombstone_c.id),
             tombstone_d2 AS (UPDATE public.files AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d1 tombstone_p WHERE tombstone_c.folder_id OPERATOR(pg_catalog.=) tombstone_p.id)))
        UPDATE drives SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE drives.deleted_at IS NULL AND drives.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'drives', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

#[test]
fn sql_of_set_null_with_a_column_list_set_default_and_restrict() {
    snapshot(
        &tenants(),
        "DELETE FROM tickets WHERE tenant_id = 1 AND id = 2",
        expect![[r#"
            WITH tombstone_target AS (SELECT tickets.tenant_id AS tombstone_k1, tickets.id AS tombstone_k2 FROM tickets WHERE (tenant_id = 1 AND id = 2) AND tickets.deleted_at IS NULL FOR UPDATE OF tickets),
                 tombstone_d1 AS (UPDATE public.steps AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.ticket_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2)) RETURNING tombstone_c.id),
                 tombstone_d2 AS (UPDATE public.checks AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_d1 tombstone_p WHERE tombstone_c.step_id OPERATOR(pg_catalog.=) tombstone_p.id)) RETURNING tombstone_c.id),
                 tombstone_n1 AS (UPDATE public.notes AS tombstone_c SET ticket_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.ticket_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2 AND tombstone_c.deleted_at IS NULL),
                 tombstone_n2 AS (UPDATE public.links AS tombstone_c SET tenant_id = DEFAULT, ticket_id = DEFAULT FROM tombstone_target tombstone_p WHERE tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.ticket_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2),
                 tombstone_r1 AS (SELECT 1 FROM (SELECT tombstone_c.tenant_id AS v1, tombstone_c.parent_id AS v2 FROM public.tickets AS tombstone_c JOIN tombstone_target tombstone_p ON tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.parent_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2 WHERE tombstone_c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM tombstone_target tombstone_x WHERE tombstone_x.tombstone_k1 OPERATOR(pg_catalog.=) tombstone_c.tenant_id AND tombstone_x.tombstone_k2 OPERATOR(pg_catalog.=) tombstone_c.id) LIMIT 1) tombstone_v WHERE tombstone.fk_violation('tickets', 'tickets_parent_fkey', 'tickets', 'tenant_id, id', pg_catalog.concat_ws(', ', tombstone_v.v1, tombstone_v.v2))),
                 tombstone_r2 AS (SELECT 1 FROM (SELECT tombstone_c.tenant_id AS v1, tombstone_c.ticket_id AS v2 FROM public.holds AS tombstone_c JOIN tombstone_target tombstone_p ON tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.ticket_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2 WHERE tombstone_c.deleted_at IS NULL LIMIT 1) tombstone_v WHERE tombstone.fk_violation('tickets', 'holds_ticket_fkey', 'holds', 'tenant_id, id', pg_catalog.concat_ws(', ', tombstone_v.v1, tombstone_v.v2))),
                 tombstone_r3 AS (SELECT 1 FROM (SELECT tombstone_c.tenant_id AS v1, tombstone_c.ticket_id AS v2 FROM public.checks AS tombstone_c JOIN tombstone_target tombstone_p ON tombstone_c.tenant_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.ticket_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2 WHERE tombstone_c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM tombstone_d2 tombstone_x WHERE tombstone_x.id OPERATOR(pg_catalog.=) tombstone_c.id) LIMIT 1) tombstone_v WHERE tombstone.fk_violation('tickets', 'checks_ticket_fkey', 'checks', 'tenant_id, id', pg_catalog.concat_ws(', ', tombstone_v.v1, tombstone_v.v2)))
            UPDATE tickets SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE tickets.deleted_at IS NULL AND tickets.tenant_id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND tickets.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k2 AND NOT EXISTS (SELECT 1 FROM tombstone_r1) AND NOT EXISTS (SELECT 1 FROM tombstone_r2) AND NOT EXISTS (SELECT 1 FROM tombstone_r3) AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'tickets', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

#[test]
fn plan_of_the_scenario_project_delete() {
    let snap = scenario();
    assert_eq!(
        describe(&snap, &steps(&snap, "projects")),
        [
            "target public.projects keys id",
            "d1 public.project_members from target via project_members_project_id_fkey",
            "d2 public.tasks from target via tasks_project_id_fkey returning id",
            "d3 public.documents from target via documents_project_id_fkey returning id",
            "d4 billing.invoices from target via invoices_project_id_fkey",
            "d5 public.comments from d2 via comments_task_id_fkey",
            "d6 public.attachments from d2 via attachments_task_id_fkey",
            "d7 public.time_entries from d2 via time_entries_task_id_fkey",
            "d8 public.document_versions from d3 via document_versions_document_id_fkey",
            "hint public.projects",
        ]
    );
}

#[test]
fn plan_of_a_user_delete() {
    let snap = scenario();
    assert_eq!(
        describe(&snap, &steps(&snap, "users")),
        [
            "target public.users keys id",
            "d1 public.team_members from target via team_members_user_id_fkey",
            "d2 public.project_members from target via project_members_user_id_fkey",
            "n1 public.projects set owner_id to NULL from target via projects_owner_id_fkey",
            "n2 public.tasks set assignee_id to NULL from target via tasks_assignee_id_fkey",
            "n3 public.comments set author_id to NULL from target via comments_author_id_fkey",
            "n4 public.time_entries set user_id to NULL from target via time_entries_user_id_fkey",
            "hint public.users",
        ]
    );
}

#[test]
fn plan_of_a_restricted_delete() {
    let snap = scenario();
    assert_eq!(
        describe(&snap, &steps(&snap, "categories")),
        [
            "target public.categories keys id",
            "r1 public.projects via projects_category_id_fkey from target",
            "hint public.categories",
        ]
    );
}

#[test]
fn plan_of_a_self_referencing_table() {
    let snap = tree();
    // The target is the tree: its descendants are a step of their own,
    // and its children cascade from the target rows and the descendants.
    assert_eq!(
        describe(&snap, &steps(&snap, "folders")),
        [
            "target public.folders keys id",
            "tree public.folders along folders_parent_id_fkey",
            "d1 public.files from target tree via files_folder_id_fkey",
            "hint public.folders",
        ]
    );
    // A child is the tree: its descendants are part of its soft delete.
    assert_eq!(
        describe(&snap, &steps(&snap, "drives")),
        [
            "target public.drives keys id",
            "d1 public.folders from target via folders_drive_id_fkey and descendants along folders_parent_id_fkey returning id",
            "d2 public.files from d1 via files_folder_id_fkey",
            "hint public.drives",
        ]
    );
}

#[test]
fn plan_of_set_null_with_a_column_list_set_default_and_restrict() {
    let snap = tenants();
    let steps = steps(&snap, "tickets");
    assert_eq!(
        describe(&snap, &steps),
        [
            "target public.tickets keys tenant_id,id",
            "d1 public.steps from target via steps_ticket_fkey returning id",
            "d2 public.checks from d1 via checks_step_fkey returning id",
            "n1 public.notes set ticket_id to NULL from target via notes_ticket_fkey",
            "n2 public.links set tenant_id,ticket_id to DEFAULT from target via links_ticket_fkey",
            "r1 public.tickets via tickets_parent_fkey from target except target",
            "r2 public.holds via holds_ticket_fkey from target",
            "r3 public.checks via checks_ticket_fkey from target except d2",
            "hint public.tickets",
        ]
    );
    // Only the listed column is set: the tenant stays.
    let notes = id(&snap, "notes");
    assert!(steps.iter().any(|s| matches!(
        s,
        Step::SetColumns { fk, columns, value: SetValue::Null, .. }
            if snap.foreign_keys()[*fk].child == notes && columns == &["ticket_id"]
    )));
}

#[test]
fn a_self_referencing_table_without_primary_key_is_refused() {
    let cat = Catalog::default()
        .table(
            "public.nodes",
            &["parent_id bigint", "deleted_at timestamp with time zone"],
            &[],
        )
        .fk(
            "nodes_parent_fkey",
            "nodes",
            &["parent_id"],
            "nodes",
            &["parent_id"],
            FkAction::Cascade,
        );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    let plan = CascadePlan::build(&snap, id(&snap, "nodes")).unwrap_or_else(|e| panic!("{e}"));
    match plan.steps(&snap) {
        Err(e) => assert_eq!(e.sqlstate(), "0A000", "{e}"),
        Ok(steps) => panic!("accepted: {steps:?}"),
    }
}

#[test]
fn sql_of_a_child_without_primary_key_or_keys_read() {
    // `plain` has no key and no children: its CTE reads nothing back.
    let cat = Catalog::default()
        .table(
            "public.parent",
            &["id bigint", "deleted_at timestamptz"],
            &["id"],
        )
        .table(
            "public.plain",
            &["parent_id bigint", "deleted_at timestamptz"],
            &[],
        )
        .fk(
            "plain_fk",
            "plain",
            &["parent_id"],
            "parent",
            &["id"],
            FkAction::Cascade,
        );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    snapshot(
        &snap,
        "DELETE FROM plain WHERE parent_id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT plain.ctid AS tombstone_ctid FROM plain WHERE (parent_id = 1) AND plain.deleted_at IS NULL FOR UPDATE OF plain)
        UPDATE plain SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE plain.deleted_at IS NULL AND plain.ctid OPERATOR(pg_catalog.=) tombstone_target.tombstone_ctid AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'plain', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
    snapshot(
        &snap,
        "DELETE FROM parent WHERE id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT parent.id AS tombstone_k1 FROM parent WHERE (id = 1) AND parent.deleted_at IS NULL FOR UPDATE OF parent),
             tombstone_d1 AS (UPDATE public.plain AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.parent_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1)))
        UPDATE parent SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE parent.deleted_at IS NULL AND parent.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'parent', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}

/// `paths` is a tree along a unique column that is not the primary key
/// (`parent_code` → `code`): the walk reads `code`, the target's keys too.
fn paths() -> SchemaSnapshot {
    let ts = "deleted_at timestamp with time zone";
    let cat = Catalog::default()
        .table(
            "public.paths",
            &["id bigint", "code text", "parent_code text", ts],
            &["id"],
        )
        .table(
            "public.roots",
            &["id bigint", "path_code text", ts],
            &["id"],
        )
        .fk(
            "paths_parent_code_fkey",
            "paths",
            &["parent_code"],
            "paths",
            &["code"],
            FkAction::Cascade,
        )
        .fk(
            "paths_root_fkey",
            "paths",
            &["parent_code"],
            "roots",
            &["path_code"],
            FkAction::Cascade,
        )
        .unique("paths", "paths_code_key", &["code"], None)
        .unique("roots", "roots_path_code_key", &["path_code"], None);
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

#[test]
fn plan_of_a_tree_along_a_column_other_than_the_key() {
    let snap = paths();
    assert_eq!(
        describe(&snap, &steps(&snap, "paths")),
        [
            "target public.paths keys id,code",
            "tree public.paths along paths_parent_code_fkey",
            "hint public.paths",
        ]
    );
    assert_eq!(
        describe(&snap, &steps(&snap, "roots")),
        [
            "target public.roots keys id,path_code",
            "d1 public.paths from target via paths_root_fkey and descendants along paths_parent_code_fkey",
            "hint public.roots",
        ]
    );
}

#[test]
fn sql_of_a_tree_along_a_column_other_than_the_key() {
    snapshot(
        &paths(),
        "DELETE FROM paths WHERE id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT paths.id AS tombstone_k1, paths.code AS tombstone_k2 FROM paths WHERE (id = 1) AND paths.deleted_at IS NULL FOR UPDATE OF paths),
             tombstone_s AS (UPDATE public.paths AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT tombstone_y.id, tombstone_y.code FROM public.paths tombstone_y, (SELECT tombstone_k1 AS id, tombstone_k2 AS code FROM tombstone_target) tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_code OPERATOR(pg_catalog.=) tombstone_p.code)) UNION SELECT tombstone_y.id, tombstone_y.code FROM public.paths tombstone_y, tombstone_r tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_code OPERATOR(pg_catalog.=) tombstone_p.code))) SELECT id FROM tombstone_r) tombstone_q WHERE tombstone_q.id OPERATOR(pg_catalog.=) tombstone_c.id) AND NOT EXISTS (SELECT 1 FROM (SELECT tombstone_k1 AS id, tombstone_k2 AS code FROM tombstone_target) tombstone_x WHERE tombstone_x.id OPERATOR(pg_catalog.=) tombstone_c.id) RETURNING tombstone_c.id, tombstone_c.code)
        UPDATE paths SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE paths.deleted_at IS NULL AND paths.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'paths', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
    snapshot(
        &paths(),
        "DELETE FROM roots WHERE id = 1",
        expect![[r#"
        WITH tombstone_target AS (SELECT roots.id AS tombstone_k1, roots.path_code AS tombstone_k2 FROM roots WHERE (id = 1) AND roots.deleted_at IS NULL FOR UPDATE OF roots),
             tombstone_d1 AS (UPDATE public.paths AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM (WITH RECURSIVE tombstone_r AS (SELECT tombstone_y.id, tombstone_y.code FROM public.paths tombstone_y WHERE tombstone_y.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_y.parent_code OPERATOR(pg_catalog.=) tombstone_p.tombstone_k2)) UNION SELECT tombstone_y.id, tombstone_y.code FROM public.paths tombstone_y, tombstone_r tombstone_p WHERE tombstone_y.deleted_at IS NULL AND ((tombstone_y.parent_code OPERATOR(pg_catalog.=) tombstone_p.code))) SELECT id FROM tombstone_r) tombstone_q WHERE tombstone_q.id OPERATOR(pg_catalog.=) tombstone_c.id))
        UPDATE roots SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE roots.deleted_at IS NULL AND roots.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND (SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', 'roots', 'actor', coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user))::text, true)) IS NOT NULL"#]],
    );
}
