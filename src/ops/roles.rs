//! `roles.bypass` into `tombstone.bypass_roles`, where the operations'
//! SQL functions check membership (`tombstone.require_bypass`).

use tokio_postgres::Client;

use crate::migrate::privileges::BYPASS_READABLE;

/// Replaces the table's rows with `roles`, in one transaction.
pub async fn sync_bypass_roles(
    client: &Client,
    roles: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("BEGIN; DELETE FROM tombstone.bypass_roles")
        .await?;
    for role in roles {
        if let Err(e) = client
            .execute(
                "INSERT INTO tombstone.bypass_roles (role_name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[role],
            )
            .await
        {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    // Bypass roles read the trail and the trash; normal roles cannot.
    for role in roles {
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                &[role],
            )
            .await;
        match exists {
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
        let grant = format!(
            "GRANT SELECT ON {} TO {}",
            BYPASS_READABLE.join(", "),
            quote_ident(role)
        );
        if let Err(e) = client.batch_execute(&grant).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    client.batch_execute("COMMIT").await
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
