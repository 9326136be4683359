//! The board on PostgreSQL: a page joins its releases to their approvals one
//! release at a time, through the index, whatever the number of approvals in
//! the database. With the planner's default price of a random page read (4,
//! a spinning disk's) the generic plan of the page's statement read every
//! approval instead (a sequential scan under a hash join): measured in a
//! 30-minute soak, 12 ms a page at 20,000 approvals against 1 ms, growing
//! with the database. The service's connections price it at 1.1, as for rows
//! held in memory (`src/store/postgres/mod.rs`, `Postgres::connect`).

use sqlx::AssertSqlSafe;

use crate::{
    helpers::spawn_app,
    plans::{connect, plan_of},
};

/// The settings the service gives its connections (`Postgres::connect`).
const SERVICE_SETTINGS: &str = "SET jit = off; SET random_page_cost = 1.1;";

/// The board's page of candidates for any status but `pending` and `expired`
/// (`candidates!` in `src/store/listing.rs`), as the service prepares it.
const CANDIDATES: &str = "PREPARE candidates(timestamptz, bigint, text, timestamptz, bigint) AS
    SELECT r.*, a.approval_id, a.email, a.decision, a.comment, a.decided_at, a.email_sent_at,
           a.link_generation, a.signed_in_issuer, a.signed_in_subject, a.signed_in_email,
           (SELECT COUNT(*) FROM job j
            WHERE j.release_id = r.release_id AND j.last_error IS NOT NULL) AS failing_jobs
    FROM (SELECT * FROM release r WHERE (r.created_at, r.release_id) < ($1, $2)
          AND CASE $3
                WHEN '' THEN 1 = 1
                WHEN 'rejected' THEN r.cancelled_at IS NOT NULL OR r.settled_status = 'rejected'
                     OR EXISTS (SELECT 1 FROM approval a WHERE a.release_id = r.release_id
                                AND a.decision = 'rejected' AND a.decided_at <= r.deadline)
                ELSE r.cancelled_at IS NULL AND (r.settled_status = 'approved'
                     OR EXISTS (SELECT 1 FROM approval a WHERE a.release_id = r.release_id
                                AND a.decision = 'approved' AND a.decided_at <= r.deadline))
              END
          ORDER BY r.created_at DESC, r.release_id DESC LIMIT $5) r
    LEFT JOIN approval a ON a.release_id = r.release_id
    ORDER BY r.created_at DESC, r.release_id DESC, a.created_at, a.email";

#[tokio::test]
async fn a_board_page_looks_up_its_releases_approvals_by_index_not_by_reading_them_all() {
    let app = spawn_app().await;
    let mut db = connect(&app).await;
    // 7,000 releases, one a minute, three approvals each, as the soak had
    // them when its board slowed down; statistics fresh, as autovacuum keeps them.
    sqlx::raw_sql(
        "INSERT INTO release (team_project, external_id, stage, attempt, phase, release_name,
                              deadline, created_at)
         SELECT 'Devx', g::text, '', 1, 'pre', 'R', now() + interval '2 days',
                now() - g * interval '1 minute'
         FROM generate_series(1, 7000) g;
         INSERT INTO approval (approval_id, release_id, email, decision, decided_at, created_at)
         SELECT gen_random_uuid(), r.release_id, e.email, 'approved', r.created_at, r.created_at
         FROM release r
         CROSS JOIN (VALUES ('ana@example.com'), ('bo@example.com'), ('cy@example.com')) e(email);
         ANALYZE release; ANALYZE approval; ANALYZE job;",
    )
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::raw_sql(SERVICE_SETTINGS)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::raw_sql(CANDIDATES).execute(&mut db).await.unwrap();
    // After five runs a prepared statement may keep one plan for any
    // parameters: the generic plan, which knows neither the status nor the limit.
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut db)
        .await
        .unwrap();

    for status in ["", "approved", "rejected"] {
        // The status is one of the three literals above.
        let explain = format!(
            "EXPLAIN EXECUTE candidates('9999-12-31', 9223372036854775807, '{status}', now(), 51)"
        );
        let plan = plan_of(&mut db, AssertSqlSafe(explain)).await;
        assert!(
            !plan.contains("Seq Scan on approval"),
            "status {status:?}: the page reads every approval:\n{plan}"
        );
    }
}
