-- Rounds: a release's stage is approved once per deployment attempt before
-- the deployment, and again after it where Azure DevOps asks; each such round
-- is a row of `release`, identified by the stage's attempt and phase too. The
-- Azure DevOps approvals a round decides (one per approver Azure assigned,
-- classic or YAML) move to a table of their own.
--
-- SQLite cannot change a table's UNIQUE constraint: the table is rebuilt
-- (https://www.sqlite.org/lang_altertable.html#otheralter; the migration
-- connection runs with foreign keys off).

CREATE TABLE release_new (
    release_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    team_project          TEXT    NOT NULL,
    external_id           TEXT    NOT NULL,
    stage                 TEXT    NOT NULL DEFAULT '',
    attempt               INTEGER NOT NULL DEFAULT 1,
    phase                 TEXT    NOT NULL DEFAULT 'pre' CHECK (phase IN ('pre', 'post')),
    release_name          TEXT    NOT NULL,
    required_approvals    INTEGER,
    deadline              INTEGER NOT NULL,
    approvers_source      TEXT,
    approvers_resolved_at INTEGER,
    approver_problem      TEXT,
    requested_for         TEXT,
    approval_rule         TEXT,
    cancelled_at          INTEGER,
    cancel_reason         TEXT,
    escalated_at          INTEGER,
    created_at            INTEGER NOT NULL,
    UNIQUE (team_project, external_id, stage, attempt, phase)
);

INSERT INTO release_new (release_id, team_project, external_id, stage, release_name,
                         required_approvals, deadline, approvers_source, approvers_resolved_at,
                         approver_problem, requested_for, approval_rule, cancelled_at,
                         cancel_reason, escalated_at, created_at)
SELECT release_id, team_project, external_id, stage, release_name,
       required_approvals, deadline, approvers_source, approvers_resolved_at,
       approver_problem, requested_for, approval_rule, cancelled_at,
       cancel_reason, escalated_at, created_at
FROM release;

CREATE TABLE azure_approval (
    azure_approval_id TEXT    NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('classic', 'yaml')),
    release_id        INTEGER NOT NULL REFERENCES release (release_id),
    written_back_at   INTEGER,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (kind, azure_approval_id)
);

INSERT INTO azure_approval (azure_approval_id, kind, release_id, written_back_at, created_at)
SELECT azure_approval_id, 'classic', release_id, azure_written_back_at, created_at
FROM release WHERE azure_approval_id IS NOT NULL;

DROP TABLE release;
ALTER TABLE release_new RENAME TO release;

CREATE INDEX release_recent ON release (created_at, release_id);
CREATE INDEX release_project_recent ON release (team_project, created_at, release_id);
CREATE INDEX azure_approval_release ON azure_approval (release_id);
