-- Azure DevOps: callbacks of checks/jobs in callback mode, and the Azure
-- release approval a service-hook release is tied to (for write-back).

ALTER TABLE release ADD COLUMN azure_approval_id TEXT;
ALTER TABLE release ADD COLUMN azure_written_back_at INTEGER;

CREATE TABLE callback (
    callback_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id       INTEGER NOT NULL REFERENCES release (release_id),
    plan_url         TEXT    NOT NULL,
    project_id       TEXT    NOT NULL,
    hub_name         TEXT    NOT NULL,
    plan_id          TEXT    NOT NULL,
    job_id           TEXT    NOT NULL,
    timeline_id      TEXT,
    task_instance_id TEXT    NOT NULL,
    -- The job access token; a secret, cleared once the callback is delivered.
    auth_token       TEXT,
    result           TEXT,
    completed_at     INTEGER,
    created_at       INTEGER NOT NULL,
    UNIQUE (release_id, plan_id, job_id, task_instance_id)
);

ALTER TABLE job ADD COLUMN callback_id INTEGER REFERENCES callback (callback_id);

CREATE INDEX job_callback ON job (callback_id);
