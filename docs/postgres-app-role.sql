-- The role careloop serves as: it reads and writes the data, and may only append to the audit trail.
-- The service role owns nothing, so it can neither drop nor disable the append-only triggers.
--
-- Run it with psql as the database's owner (the role that runs `careloop migrate`), in the careloop
-- database, after the migrations (create the database first: docs/operations.md, "PostgreSQL roles"):
--
--   psql "postgres://careloop@db:5432/careloop" -v ON_ERROR_STOP=1 \
--        -v role=careloop_app -v password="$APP_PASSWORD" -f docs/postgres-app-role.sql
--
-- `role` defaults to careloop_app; `password` may be left out (the role then keeps the one it has, or
-- has none and signs in only as pg_hba.conf allows, e.g. by a client certificate). When a superuser runs
-- it rather than the owner, name the owner: -v owner=careloop.
-- Tables and sequences the owner creates later (a new migration) get the service's privileges by default.
-- Re-run it after every `careloop migrate` of an upgrade, with the same role: it changes nothing that is
-- already right, and re-applies the refusals below to tables a migration created (the defaults would
-- otherwise grant UPDATE and DELETE on a new append-only table).
-- tests/audit/test_postgres_role.py runs this file and checks each refusal.

\if :{?role}
\else
  \set role careloop_app
\endif
-- The role that owns the tables (runs the migrations): by default the one running this file.
\if :{?owner}
\else
  SELECT current_user AS owner \gset
\endif

-- Creating the role (and giving it a password) needs CREATEROLE, which the owner of operations.md has; a re-run
-- without a password changes no role, so it needs none.
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN', :'role')
 WHERE NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = :'role') \gexec
\if :{?password}
  ALTER ROLE :"role" PASSWORD :'password';
\endif

GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"role";
-- What the owner creates from now on: the tables of later migrations.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"role";

REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM :"role";
REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoint FROM :"role";
-- The per-patient index of the trail is appended with its events; archive runs delete from it as the owner.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_patient_index FROM :"role";
-- Events wait in the inbox until audit_seal (SECURITY DEFINER) links them into the chain and removes them.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_inbox FROM :"role";
-- Inbox rows that could not be sealed are set aside by audit_seal alone, and kept as evidence.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_inbox_rejected FROM :"role";
-- Archive anchors are written, and archived events deleted, only by `careloop audit archive`, run as the owner.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_archive FROM :"role";
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tortoise_migrations FROM :"role";
