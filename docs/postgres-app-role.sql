-- The role careloop serves as: it reads and writes the data, and may only append to the audit trail.
-- Run as the database's owner (the role that runs `careloop migrate`), after the migrations.
-- The service role owns nothing, so it can neither drop nor disable the append-only triggers.
-- tests/audit/test_postgres_role.py runs this file and checks each refusal.
CREATE ROLE careloop_app LOGIN;
GRANT USAGE ON SCHEMA public TO careloop_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO careloop_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM careloop_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoint FROM careloop_app;
-- Archive anchors are written, and archived events deleted, only by `careloop audit archive`, run as the owner.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_archive FROM careloop_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON tortoise_migrations FROM careloop_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO careloop_app;
