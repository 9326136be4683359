-- A job's change notifies the replicas (migration 0012) only when an answer
-- can show it: answers show a round's failing jobs (its troubles and their
-- count), nothing of a job that never failed. So claims, renewed leases and
-- the insert and deletion of a job that never failed send nothing.
--
-- Every transaction that notifies holds PostgreSQL's notification lock from
-- just before its commit until it has committed, its WAL flush included, so
-- notifying commits go one at a time: during a fan-out of 1,000 releases,
-- client backends waited on that lock (`Lock:object`) three samples in four,
-- and a claim, four of a release's nine commits, notified each time.

DROP TRIGGER job_changed ON job;
CREATE TRIGGER job_inserted AFTER INSERT ON job
    FOR EACH ROW WHEN (NEW.last_error IS NOT NULL) EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER job_updated AFTER UPDATE ON job
    FOR EACH ROW WHEN (OLD.last_error IS NOT NULL OR NEW.last_error IS NOT NULL)
    EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER job_deleted AFTER DELETE ON job
    FOR EACH ROW WHEN (OLD.last_error IS NOT NULL) EXECUTE FUNCTION deploy_gate_changed();
