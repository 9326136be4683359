-- The release board lists releases newest first, of every project or of one,
-- a page at a time from a (created_at, release_id) position.

CREATE INDEX release_recent ON release (created_at, release_id);
CREATE INDEX release_project_recent ON release (team_project, created_at, release_id);
