-- Releases awaiting approval, their approvals, the durable job queue, and settings.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE release (
    release_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    team_project          TEXT    NOT NULL,
    external_id           TEXT    NOT NULL,
    stage                 TEXT    NOT NULL DEFAULT '',
    release_name          TEXT    NOT NULL,
    required_approvals    INTEGER,
    deadline              INTEGER NOT NULL,
    approvers_source      TEXT,
    approvers_resolved_at INTEGER,
    approver_problem      TEXT,
    created_at            INTEGER NOT NULL,
    UNIQUE (team_project, external_id, stage)
);

CREATE TABLE approval (
    approval_id   TEXT    PRIMARY KEY,
    release_id    INTEGER NOT NULL REFERENCES release (release_id),
    email         TEXT    NOT NULL,
    decision      TEXT    CHECK (decision IN ('approved', 'rejected')),
    comment       TEXT,
    decided_at    INTEGER,
    email_sent_at INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (release_id, email)
);

CREATE TABLE job (
    job_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    release_id   INTEGER NOT NULL REFERENCES release (release_id),
    approval_id  TEXT    REFERENCES approval (approval_id),
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    dead_at      INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE INDEX job_due ON job (run_at) WHERE dead_at IS NULL;
CREATE INDEX job_release ON job (release_id);

CREATE TABLE setting (
    setting_id TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
