-- Approval policies and operator actions: who requested a release, the rule its
-- decisions are judged by, cancellation, escalation, superseded approval links,
-- and notifications to channels besides email.

ALTER TABLE release ADD COLUMN requested_for text;
ALTER TABLE release ADD COLUMN approval_rule text;
ALTER TABLE release ADD COLUMN cancelled_at timestamptz;
ALTER TABLE release ADD COLUMN cancel_reason text;
ALTER TABLE release ADD COLUMN escalated_at timestamptz;

-- Raised when an operator re-sends the approval email: older links stop working.
ALTER TABLE approval ADD COLUMN link_generation bigint NOT NULL DEFAULT 0;

ALTER TABLE job ADD COLUMN channel text;
