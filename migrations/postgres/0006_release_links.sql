-- What emails and pages show of a release besides its name: its page in Azure
-- DevOps (`ReleaseUrl`) and its release definition or pipeline name.

ALTER TABLE release ADD COLUMN release_url text;
ALTER TABLE release ADD COLUMN definition_name text;
