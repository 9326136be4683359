-- What emails and pages show of a release besides its name: its page in Azure
-- DevOps (`ReleaseUrl`) and its release definition or pipeline name.

ALTER TABLE release ADD COLUMN release_url TEXT;
ALTER TABLE release ADD COLUMN definition_name TEXT;
