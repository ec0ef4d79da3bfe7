use super::*;

#[test]
fn plain_from() {
    check("SELECT * FROM tasks", "SELECT * FROM tasks WHERE tasks.deleted_at IS NULL");
}
