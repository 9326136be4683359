-- The board's `status=expired` page: rounds not concluded whose deadline
-- passed, newest first. Walking every release newest first read each round
-- whose deadline is still ahead before the first expired one (at one release
-- every 30 seconds and 48-hour deadlines, 5,760 rounds: 13-14 ms a page at a
-- million releases). The rounds not concluded, in the board's order, skip
-- those that were decided; what is left before the first expired round are
-- the pending ones.

CREATE INDEX release_unconcluded_recent ON release (created_at, release_id)
    WHERE concluded_at IS NULL;
