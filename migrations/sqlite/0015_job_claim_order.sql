-- PostgreSQL only (`postgres/0015_job_claim_order.sql`): an index in the
-- order workers claim jobs, (run_at, job_id). SQLite's index on run_at ends
-- with the rowid, job_id, so it already holds that order; nothing to change.
SELECT 1;
