-- Rounds decided in Azure DevOps itself: an approval approved or rejected in
-- Azure's own UI, the release abandoned, its deployment cancelled. The round
-- then takes that status (settled by Azure), and nothing is written back.

ALTER TABLE release ADD COLUMN settled_status text CHECK (settled_status IN ('approved', 'rejected'));
ALTER TABLE release ADD COLUMN settled_at timestamptz;
ALTER TABLE release ADD COLUMN settled_reason text;

-- Each approval's decision as taken in Azure itself.
ALTER TABLE azure_approval ADD COLUMN decided_in_azure text
    CHECK (decided_in_azure IN ('approved', 'rejected'));
