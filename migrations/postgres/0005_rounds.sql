-- Rounds: a release's stage is approved once per deployment attempt before
-- the deployment, and again after it where Azure DevOps asks; each such round
-- is a row of `release`, identified by the stage's attempt and phase too. The
-- Azure DevOps approvals a round decides (one per approver Azure assigned,
-- classic or YAML) move to a table of their own.

ALTER TABLE release ADD COLUMN attempt bigint NOT NULL DEFAULT 1;
ALTER TABLE release ADD COLUMN phase text NOT NULL DEFAULT 'pre' CHECK (phase IN ('pre', 'post'));
ALTER TABLE release DROP CONSTRAINT release_team_project_external_id_stage_key;
ALTER TABLE release ADD CONSTRAINT release_round_key
    UNIQUE (team_project, external_id, stage, attempt, phase);

CREATE TABLE azure_approval (
    azure_approval_id text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('classic', 'yaml')),
    release_id        bigint      NOT NULL REFERENCES release (release_id),
    written_back_at   timestamptz,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (kind, azure_approval_id)
);

INSERT INTO azure_approval (azure_approval_id, kind, release_id, written_back_at, created_at)
SELECT azure_approval_id, 'classic', release_id, azure_written_back_at, created_at
FROM release WHERE azure_approval_id IS NOT NULL;

ALTER TABLE release DROP COLUMN azure_approval_id;
ALTER TABLE release DROP COLUMN azure_written_back_at;

CREATE INDEX azure_approval_release ON azure_approval (release_id);
