-- Seeds :n releases of TeamProject "Bench" (ReleaseId 1..n, stage '', first
-- pre-deployment round) with three approvals each into a migrated deploy-gate
-- SQLite database, as the service would have stored them. `bench/million/run`
-- substitutes @N@ and @NOW_MS@ (the newest release's creation, ms since the
-- epoch). One release every 30 seconds back from then; by i % 10: 0-5
-- approved by all three, 6 rejected by the first, 8 cancelled, 7 and 9
-- undecided (expired once their 48-hour deadline passed, else pending).
-- Times are milliseconds since the epoch, as the store keeps them.

PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -200000;

BEGIN;
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < @N@),
     r AS (SELECT i, @NOW_MS@ - (@N@ - i) * 30000 AS created, i % 10 AS kind FROM seq)
INSERT INTO release (release_id, team_project, external_id, stage, attempt, phase, release_name,
                     deadline, approvers_source, approvers_resolved_at, cancelled_at,
                     cancel_reason, created_at, concluded_at)
SELECT i, 'Bench', CAST(i AS TEXT), '', 1, 'pre', 'seed',
       created + 172800000, 'request', created + 5,
       CASE WHEN kind = 8 THEN created + 600000 END,
       CASE WHEN kind = 8 THEN 'seeded' END,
       created,
       CASE WHEN kind <= 6 THEN created + 3600000 + 2 WHEN kind = 8 THEN created + 600000 END
FROM r;

INSERT INTO approval (approval_id, release_id, email, decision, decided_at, email_sent_at, created_at)
SELECT printf('00000000-0000-4000-8000-%012x', r.release_id * 4 + a.k),
       r.release_id, a.email,
       CASE WHEN r.release_id % 10 <= 5 THEN 'approved'
            WHEN r.release_id % 10 = 6 AND a.k = 0 THEN 'rejected' END,
       CASE WHEN r.release_id % 10 <= 5 OR (r.release_id % 10 = 6 AND a.k = 0)
            THEN r.created_at + 3600000 + a.k END,
       r.created_at + 1000 + a.k,
       r.created_at + 5 + a.k
FROM release r
CROSS JOIN (SELECT 0 AS k, 'ana@example.com' AS email
            UNION ALL SELECT 1, 'bo@example.com'
            UNION ALL SELECT 2, 'cy@example.com') a
WHERE r.team_project = 'Bench';
COMMIT;

PRAGMA wal_checkpoint(TRUNCATE);
ANALYZE;
