-- The same rows as seed-sqlite.sql (read it for what is seeded), for a
-- migrated deploy-gate PostgreSQL database, with generate_series; run by
-- `bench/million/run` with psql, @N@ and @NOW_MS@ substituted.

SET synchronous_commit = off;

BEGIN;
INSERT INTO release (release_id, team_project, external_id, stage, attempt, phase, release_name,
                     deadline, approvers_source, approvers_resolved_at, cancelled_at,
                     cancel_reason, created_at, concluded_at)
SELECT i, 'Bench', i::text, '', 1, 'pre', 'seed',
       created + interval '48 hours', 'request', created + interval '5 ms',
       CASE WHEN kind = 8 THEN created + interval '10 minutes' END,
       CASE WHEN kind = 8 THEN 'seeded' END,
       created,
       CASE WHEN kind <= 6 THEN created + interval '1 hour 2 ms'
            WHEN kind = 8 THEN created + interval '10 minutes' END
FROM (SELECT i, to_timestamp((@NOW_MS@ - (@N@ - i) * 30000) / 1000.0) AS created, i % 10 AS kind
      FROM generate_series(1::bigint, @N@) AS i) r;

-- Later releases take ids after the seeded ones.
SELECT setval(pg_get_serial_sequence('release', 'release_id'), @N@);

INSERT INTO approval (approval_id, release_id, email, decision, decided_at, email_sent_at, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(r.release_id * 4 + a.k), 12, '0'))::uuid,
       r.release_id, a.email,
       CASE WHEN r.release_id % 10 <= 5 THEN 'approved'
            WHEN r.release_id % 10 = 6 AND a.k = 0 THEN 'rejected' END,
       CASE WHEN r.release_id % 10 <= 5 OR (r.release_id % 10 = 6 AND a.k = 0)
            THEN r.created_at + interval '1 hour' + a.k * interval '1 ms' END,
       r.created_at + interval '1 second' + a.k * interval '1 ms',
       r.created_at + interval '5 ms' + a.k * interval '1 ms'
FROM release r
CROSS JOIN (VALUES (0, 'ana@example.com'), (1, 'bo@example.com'), (2, 'cy@example.com')) AS a(k, email)
WHERE r.team_project = 'Bench';
COMMIT;

VACUUM ANALYZE release;
VACUUM ANALYZE approval;
