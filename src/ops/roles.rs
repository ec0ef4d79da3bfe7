//! `roles.bypass` into `tombstone.bypass_roles`, where the operations'
//! SQL functions check membership (`tombstone.require_bypass`).

use tokio_postgres::Client;

use crate::migrate::privileges::bypass_reads;

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
    if let Err(e) = client.batch_execute(&bypass_reads()).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    client.batch_execute("COMMIT").await
}
