-- Progress shown in Azure DevOps for callback mode: when the TaskStarted event
-- was delivered, and the lines for the task's timeline feed, posted in order.

ALTER TABLE callback ADD COLUMN started_at INTEGER;

-- Registrations made before progress was shown get no late TaskStarted.
UPDATE callback SET started_at = created_at;

CREATE TABLE callback_line (
    callback_line_id INTEGER PRIMARY KEY AUTOINCREMENT,
    callback_id      INTEGER NOT NULL REFERENCES callback (callback_id),
    -- `progress`, or `outcome` for the last line, which TaskCompleted follows.
    kind             TEXT    NOT NULL,
    line             TEXT    NOT NULL,
    posted_at        INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE INDEX callback_line_callback ON callback_line (callback_id, callback_line_id);
