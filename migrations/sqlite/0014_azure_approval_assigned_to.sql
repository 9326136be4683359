-- Whom Azure DevOps assigned each approval to, as the service-hook event
-- names them: identity ids (GUIDs), comma separated; a policy with
-- `azure_approvers = { assigned = true }` asks their members. NULL for
-- approvals stored before, and where the event names nobody.
ALTER TABLE azure_approval ADD COLUMN assigned_to TEXT;
