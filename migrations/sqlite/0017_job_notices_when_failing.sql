-- PostgreSQL only (`postgres/0017_job_notices_when_failing.sql`): there a
-- job's change notifies the replicas only while the job is failing. SQLite's
-- replicas are one process; nothing to change here.
SELECT 1;
