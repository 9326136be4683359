-- Retention deletes the rounds concluded longest ago first, a batch at a time:
-- an index of the concluded rounds by when they concluded finds each batch
-- without reading the rest. (Expired rounds, never concluded, are found by
-- deadline through release_unconcluded of migration 0010.)

CREATE INDEX release_concluded ON release (concluded_at) WHERE concluded_at IS NOT NULL;
