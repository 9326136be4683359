-- PostgreSQL only (`postgres/0018_approvers_found.sql`): there a function
-- stores a round's approvers and claims their emails in one round trip.
-- SQLite's statements make no round trip over a network; nothing to add.
SELECT 1;
