-- Every change to the service's tables notifies the channel
-- `deploy_gate_changes` when its transaction commits, with the table's schema
-- as payload. Each replica listens there and keeps answers to gate polls and
-- approval views only while no notification came since they were read: the
-- version that a replica's commit moves, which PostgreSQL has no other way to
-- tell without a round trip. Notifications with the same payload are sent
-- once per transaction, so a transaction touching many rows sends one.
-- A table added later whose rows show in answers gets the same trigger.

CREATE FUNCTION deploy_gate_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deploy_gate_changes', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER release_changed AFTER INSERT OR UPDATE OR DELETE ON release
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER approval_changed AFTER INSERT OR UPDATE OR DELETE ON approval
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER job_changed AFTER INSERT OR UPDATE OR DELETE ON job
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER setting_changed AFTER INSERT OR UPDATE OR DELETE ON setting
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER callback_changed AFTER INSERT OR UPDATE OR DELETE ON callback
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER callback_line_changed AFTER INSERT OR UPDATE OR DELETE ON callback_line
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
CREATE TRIGGER azure_approval_changed AFTER INSERT OR UPDATE OR DELETE ON azure_approval
    FOR EACH ROW EXECUTE FUNCTION deploy_gate_changed();
