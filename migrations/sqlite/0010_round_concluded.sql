-- When a round stopped being pending: approved or rejected by its votes,
-- cancelled, or settled in Azure DevOps; recorded by the lifecycle in the
-- transaction that concludes it, NULL while it is undecided. Expiry is not
-- recorded: it is the clock passing the deadline, so the pending rounds are
-- the unconcluded ones whose deadline is still ahead. The partial index holds
-- only unconcluded rounds, ordered by deadline, and covers the operators'
-- gauges (how many rounds are pending, since when the oldest).
-- Rounds concluded before this migration are recorded at the next start.

ALTER TABLE release ADD COLUMN concluded_at INTEGER;

CREATE INDEX release_unconcluded ON release (deadline, created_at) WHERE concluded_at IS NULL;
