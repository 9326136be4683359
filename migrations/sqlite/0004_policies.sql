-- Approval policies and operator actions: who requested a release, the rule its
-- decisions are judged by, cancellation, escalation, superseded approval links,
-- and notifications to channels besides email.

ALTER TABLE release ADD COLUMN requested_for TEXT;
ALTER TABLE release ADD COLUMN approval_rule TEXT;
ALTER TABLE release ADD COLUMN cancelled_at INTEGER;
ALTER TABLE release ADD COLUMN cancel_reason TEXT;
ALTER TABLE release ADD COLUMN escalated_at INTEGER;

-- Raised when an operator re-sends the approval email: older links stop working.
ALTER TABLE approval ADD COLUMN link_generation INTEGER NOT NULL DEFAULT 0;

ALTER TABLE job ADD COLUMN channel TEXT;
