-- A round's approvers found by a job, stored in one round trip: the fan-out
-- of a new release (BENCHMARKS.md, change 48) took three for this (the
-- transaction's BEGIN with the release's lock, the writes, COMMIT) and one
-- more for its worker to claim the approval emails. The writes are those of
-- `src/store/approvers.rs` (IN_ONE_STATEMENT), made after the release's lock
-- is taken, so each statement here reads what the lock's holder committed.
--
-- Unless the release has a callback registration not yet delivered (that
-- needs a line on its feed, rendered by the service, in the same
-- transaction), it locks the release, stores the approvals of `rows` (JSON:
-- one object per job of each approval, its `kind` null where an approval
-- needs none; `created_at` in epoch milliseconds) skipping approvers the
-- release has, queues their jobs due at `found_at`, records where the
-- approvers came from, deletes the finished job `completing`, and claims the
-- release's first `claim_most` due jobs of `claim_kind` until `lease_until`.
--
-- It returns the claimed jobs, each with the release and its approvals as
-- they are then (a row for each job and approval; one row with a null job
-- when none was claimed), or no row when it wrote nothing: the release has
-- an open callback registration, or is gone.

CREATE FUNCTION deploy_gate_approvers_found(
    found_release bigint, found_at timestamptz, source text, problem text,
    rule text, completing bigint, queued_at timestamptz, rows text,
    claim_kind text, claim_most bigint, lease_until timestamptz)
RETURNS TABLE (claimed_job job, round_release release, round_approval approval)
LANGUAGE plpgsql AS $$
DECLARE
    claimed_ids bigint[];
BEGIN
    PERFORM 1 FROM release r WHERE r.release_id = found_release FOR UPDATE;
    IF NOT FOUND OR EXISTS (
        SELECT 1 FROM callback c WHERE c.release_id = found_release AND c.completed_at IS NULL
    ) THEN
        RETURN;
    END IF;

    WITH v AS (
        SELECT r.approval_id, r.email,
               timestamptz 'epoch' + r.created_at * interval '1 millisecond' AS created_at,
               r.kind, r.channel
        FROM json_to_recordset(rows::json)
             AS r (approval_id uuid, email text, created_at bigint, kind text, channel text)
    ), inserted AS (
        INSERT INTO approval (approval_id, release_id, email, created_at)
        SELECT DISTINCT v.approval_id, found_release, v.email, v.created_at FROM v
        ON CONFLICT (release_id, email) DO NOTHING RETURNING approval_id
    )
    INSERT INTO job (kind, release_id, approval_id, channel, run_at, created_at)
    SELECT v.kind, found_release, v.approval_id, v.channel, found_at, queued_at
    FROM v JOIN inserted USING (approval_id) WHERE v.kind IS NOT NULL;

    UPDATE release r SET approvers_source = source, approvers_resolved_at = found_at,
                         approver_problem = problem, approval_rule = rule
    WHERE r.release_id = found_release;
    DELETE FROM job j WHERE j.job_id = completing;

    WITH c AS (
        UPDATE job j SET locked_until = lease_until
        WHERE j.job_id IN (
            SELECT d.job_id FROM job d
            WHERE d.release_id = found_release AND d.kind = claim_kind AND d.dead_at IS NULL
              AND d.run_at <= found_at AND (d.locked_until IS NULL OR d.locked_until <= found_at)
            ORDER BY d.job_id LIMIT claim_most FOR UPDATE SKIP LOCKED)
        RETURNING j.job_id
    )
    SELECT array_agg(c.job_id) INTO claimed_ids FROM c;

    RETURN QUERY
    SELECT j, r, a
    FROM release r
         LEFT JOIN job j ON j.job_id = ANY (claimed_ids)
         LEFT JOIN approval a ON a.release_id = r.release_id
    WHERE r.release_id = found_release
    ORDER BY j.job_id, a.created_at, a.email;
END
$$;
