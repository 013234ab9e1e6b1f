//! A database that stays locked gives 503 with Retry-After, and the server
//! recovers as soon as the lock is gone.

use diesel::Connection;
use diesel::connection::SimpleConnection;

use crate::support::*;

#[test]
fn a_held_sqlite_write_lock_gives_503_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = databases(dir.path()).into_iter().next().unwrap();
    let server = Server::start(&db, dir.path(), &[]);
    let (member, token) = server.enrol(1, &[]);
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();

    let mut holder = diesel::SqliteConnection::establish(&path).unwrap();
    holder.batch_execute("BEGIN IMMEDIATE").unwrap();
    let (status, problem) = server.post(
        "/v1/claims",
        Some(&token),
        Some("busy-1"),
        &inpatient_claim(member, "5000.00"),
    );
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "service_unavailable");
    holder.batch_execute("ROLLBACK").unwrap();

    // Nothing was stored and the key is still free.
    let (status, decided) = server.post(
        "/v1/claims",
        Some(&token),
        Some("busy-1"),
        &inpatient_claim(member, "5000.00"),
    );
    assert_eq!(status, 201, "{decided}");
    assert!(decided["id"].is_i64());
    assert_eq!(server.get("/readyz", None).0, 200);
}
