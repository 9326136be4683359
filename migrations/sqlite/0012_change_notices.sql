-- PostgreSQL only: there, triggers notify the replicas of every change
-- (`postgres/0012_change_notices.sql`). SQLite's replicas are one process, and
-- the service learns of commits from the WAL index; nothing to change here.
SELECT 1;
