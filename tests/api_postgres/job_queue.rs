//! The job queue on PostgreSQL: a worker claims the next due job in the order
//! jobs were due, and the claim reads that order from an index, so its cost
//! does not grow with the jobs waiting. A fan-out of 1,000 releases queues
//! 4,000 jobs at once; claiming with a sort of every due job took a
//! millisecond each and most of the fan-out's time (BENCHMARKS.md).

use crate::{
    helpers::spawn_app,
    plans::{connect, plan_of},
};

/// The claim of `src/store/postgres/mod.rs` (the `UPDATE` in `claim_job`'s
/// `WITH claimed AS (…)`, which then reads the job's release), the times written in.
const CLAIM: &str = "EXPLAIN UPDATE job SET locked_until = now() + interval '1 minute'
     WHERE job_id = (
         SELECT job_id FROM job
         WHERE dead_at IS NULL AND run_at <= now() AND (locked_until IS NULL OR locked_until <= now())
         ORDER BY run_at, job_id LIMIT 1
         FOR UPDATE SKIP LOCKED)
     RETURNING job_id, kind, release_id, approval_id, callback_id, channel, attempts";

#[tokio::test]
async fn the_next_job_is_claimed_from_an_index_in_claim_order_without_sorting_the_queue() {
    let app = spawn_app().await;
    let mut db = connect(&app).await;
    sqlx::raw_sql(
        "INSERT INTO release (team_project, external_id, stage, attempt, phase, release_name,
                              deadline, created_at)
         VALUES ('Devx', '1', '', 1, 'pre', 'R', now() + interval '1 day', now());
         INSERT INTO job (kind, release_id, run_at, created_at)
         SELECT 'send_approval_email', (SELECT release_id FROM release), now() - g * interval '1 ms', now()
         FROM generate_series(1, 5000) g;
         ANALYZE job;",
    )
    .execute(&mut db)
    .await
    .unwrap();

    let plan = plan_of(&mut db, CLAIM).await;
    assert!(!plan.contains("Sort"), "the claim sorts the queue:\n{plan}");
    assert!(
        plan.contains("Index Scan using job_next"),
        "the claim does not read the claim-order index:\n{plan}"
    );
}
