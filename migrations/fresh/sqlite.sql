CREATE TABLE "appointment" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "slot_start" TIMESTAMP NOT NULL,
    "slot_end" TIMESTAMP NOT NULL,
    "seat" INT,
    "status" VARCHAR(10) NOT NULL,
    "channel" VARCHAR(12) NOT NULL,
    "reason" BLOB,
    "arrived_at" TIMESTAMP,
    "cancelled_at" TIMESTAMP,
    "cancellation_reason" VARCHAR(12),
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "booked_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) REFERENCES "partner" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "rescheduled_from_id" CHAR(36) REFERENCES "appointment" ("id") ON DELETE RESTRICT,
    "schedule_id" CHAR(36) NOT NULL REFERENCES "schedule" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) REFERENCES "visit" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_appointment_schedul_3c1360" UNIQUE ("schedule_id", "slot_start", "seat")
);
CREATE TABLE "attachment" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "filename" BLOB NOT NULL,
    "content_type" VARCHAR(100) NOT NULL,
    "size" INT NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    "storage_key" VARCHAR(64) NOT NULL UNIQUE,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) NOT NULL REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "uploaded_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT
);
CREATE TABLE "audit_archive" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "institution_id" CHAR(36) NOT NULL,
    "up_to_seq" BIGINT NOT NULL,
    "up_to_hash" VARCHAR(64) NOT NULL,
    "archived_at" TIMESTAMP NOT NULL,
    "events" BIGINT NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    CONSTRAINT "uid_audit_archi_institu_46558b" UNIQUE ("institution_id", "up_to_seq")
);
CREATE TABLE "audit_chain_head" (
    "institution_id" CHAR(36) NOT NULL  PRIMARY KEY,
    "last_seq" BIGINT NOT NULL,
    "last_hash" VARCHAR(64) NOT NULL
);
CREATE TABLE "audit_checkpoint" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "institution_id" CHAR(36) NOT NULL,
    "last_seq" BIGINT NOT NULL,
    "head_hash" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "key_id" VARCHAR(16) NOT NULL,
    "signature" VARCHAR(128) NOT NULL,
    CONSTRAINT "uid_audit_check_institu_b5472f" UNIQUE ("institution_id", "last_seq")
);
CREATE TABLE "audit_event" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "institution_id" CHAR(36) NOT NULL,
    "seq" BIGINT NOT NULL,
    "occurred_at" TIMESTAMP NOT NULL,
    "actor_kind" VARCHAR(16) NOT NULL,
    "actor_id" CHAR(36),
    "token_id" CHAR(36),
    "action" VARCHAR(32) NOT NULL,
    "resource_type" VARCHAR(32) NOT NULL,
    "resource_id" CHAR(36),
    "patient_id" CHAR(36),
    "field_classes" VARCHAR(200) NOT NULL,
    "fields_read" VARCHAR(500) NOT NULL,
    "outcome" VARCHAR(16) NOT NULL,
    "reason" VARCHAR(64) NOT NULL,
    "policy_rule" VARCHAR(200) NOT NULL,
    "request_id" VARCHAR(64) NOT NULL,
    "client_address" VARCHAR(64) NOT NULL,
    "user_agent" VARCHAR(200) NOT NULL,
    "prev_hash" VARCHAR(64) NOT NULL,
    "hash" VARCHAR(64) NOT NULL, "subjects" TEXT NOT NULL DEFAULT '', "mac" VARCHAR(64) NOT NULL DEFAULT '',
    CONSTRAINT "uid_audit_event_institu_99bfaf" UNIQUE ("institution_id", "seq")
);
CREATE TABLE "audit_patient_index" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "institution_id" CHAR(36) NOT NULL,
    "seq" BIGINT NOT NULL,
    "patient_id" CHAR(36) NOT NULL,
    "occurred_at" TIMESTAMP NOT NULL,
    "actor_kind" VARCHAR(16) NOT NULL,
    "actor_id" CHAR(36),
    "action" VARCHAR(32) NOT NULL,
    "outcome" VARCHAR(16) NOT NULL,
    CONSTRAINT "uid_audit_patie_institu_7c4599" UNIQUE ("institution_id", "seq", "patient_id")
);
CREATE TABLE "business_calendar" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "week" JSON NOT NULL,
    "workday_hours" JSON NOT NULL,
    "holidays" JSON NOT NULL,
    "workdays" JSON NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_business_ca_institu_ec612a" UNIQUE ("institution_id")
);
CREATE TABLE "campaign" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "purpose" VARCHAR(10) NOT NULL,
    "cause" VARCHAR(32) NOT NULL,
    "subject" VARCHAR(200) NOT NULL,
    "body" TEXT NOT NULL,
    "audience" JSON NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "recipients" INT NOT NULL,
    "queued" INT NOT NULL,
    "refused" JSON NOT NULL,
    "cursor" VARCHAR(60),
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "author_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
, "approved_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT, "approved_at" TIMESTAMP);
CREATE TABLE "care_plan" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "title" BLOB NOT NULL,
    "goals" BLOB,
    "starts_on" DATE NOT NULL,
    "ends_on" DATE,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "author_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) REFERENCES "visit" ("id") ON DELETE RESTRICT
);
CREATE TABLE "care_plan_activity" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "due_on" DATE NOT NULL,
    "description" BLOB,
    "status" VARCHAR(10) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "plan_id" CHAR(36) NOT NULL REFERENCES "care_plan" ("id") ON DELETE RESTRICT
);
CREATE TABLE "care_team_member" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_care_team_m_patient_82799b" UNIQUE ("patient_id", "staff_id")
);
CREATE TABLE "communication" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "key" VARCHAR(160) NOT NULL,
    "cause" VARCHAR(32) NOT NULL,
    "purpose" VARCHAR(10) NOT NULL,
    "direction" VARCHAR(8) NOT NULL,
    "channel" VARCHAR(8),
    "status" VARCHAR(10) NOT NULL,
    "refusal" VARCHAR(24),
    "due_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    "delivered_at" TIMESTAMP,
    "settled_at" TIMESTAMP,
    "attempts" INT NOT NULL,
    "last_error" VARCHAR(200) NOT NULL,
    "gateway_message_id" VARCHAR(100),
    "variables" JSON NOT NULL,
    "subject" BLOB,
    "body" BLOB,
    "note" BLOB,
    "appointment_id" CHAR(36) REFERENCES "appointment" ("id") ON DELETE RESTRICT,
    "campaign_id" CHAR(36) REFERENCES "campaign" ("id") ON DELETE RESTRICT,
    "contact_id" CHAR(36) REFERENCES "contact" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT, "leased_until" TIMESTAMP, "rescheduled_to" TIMESTAMP, "reserved_at" TIMESTAMP,
    CONSTRAINT "uid_communicati_institu_f3136e" UNIQUE ("institution_id", "key")
);
CREATE TABLE "contact" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "relationship" VARCHAR(16) NOT NULL,
    "phone" BLOB,
    "phone_bidx" VARCHAR(64),
    "is_emergency" INT NOT NULL,
    "may_receive_information" INT NOT NULL,
    "notes" BLOB,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT
, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "contract" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "number" VARCHAR(32) NOT NULL,
    "title" VARCHAR(200) NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "start_on" DATE NOT NULL,
    "end_on" DATE NOT NULL,
    "current_version" INT NOT NULL,
    "activated_at" TIMESTAMP,
    "suspended_at" TIMESTAMP,
    "ended_at" TIMESTAMP,
    "status_reason" VARCHAR(200),
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "created_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "guarantor_id" CHAR(36) REFERENCES "contact" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) REFERENCES "partner" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "renewal_of_id" CHAR(36) REFERENCES "contract" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_contract_institu_6a6763" UNIQUE ("institution_id", "number")
);
CREATE TABLE "contract_item" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "position" INT NOT NULL,
    "code" VARCHAR(32) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "quantity" INT NOT NULL,
    "frequency" VARCHAR(10) NOT NULL,
    "unit_price" BIGINT NOT NULL,
    "period_total" BIGINT NOT NULL,
    "delivered_by_partner" INT NOT NULL,
    "contract_version_id" CHAR(36) NOT NULL REFERENCES "contract_version" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "price_id" CHAR(36) NOT NULL REFERENCES "service_item_price" ("id") ON DELETE RESTRICT,
    "service_item_id" CHAR(36) NOT NULL REFERENCES "service_item" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_contract_it_contrac_541d5f" UNIQUE ("contract_version_id", "position")
);
CREATE TABLE "contract_signature" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "party" VARCHAR(12) NOT NULL,
    "signer_kind" VARCHAR(10) NOT NULL,
    "signer_name" VARCHAR(100) NOT NULL,
    "method" VARCHAR(10) NOT NULL,
    "signed_at" TIMESTAMP NOT NULL,
    "document_sha256" VARCHAR(64) NOT NULL,
    "contact_id" CHAR(36) REFERENCES "contact" ("id") ON DELETE RESTRICT,
    "contract_version_id" CHAR(36) NOT NULL REFERENCES "contract_version" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "witness_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_contract_si_contrac_0541d0" UNIQUE ("contract_version_id", "party")
);
CREATE TABLE "contract_version" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "number" INT NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "effective_on" DATE NOT NULL,
    "end_on" DATE NOT NULL,
    "billing_period" VARCHAR(10) NOT NULL,
    "deposit" BIGINT NOT NULL,
    "period_total" BIGINT NOT NULL,
    "notice_days" INT NOT NULL,
    "auto_renew" INT NOT NULL,
    "rights_duties" TEXT NOT NULL,
    "clauses" BLOB,
    "change_summary" TEXT,
    "document_sha256" VARCHAR(64),
    "document_key" VARCHAR(64),
    "document_size" INT,
    "sent_at" TIMESTAMP,
    "signed_at" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL,
    "contract_id" CHAR(36) NOT NULL REFERENCES "contract" ("id") ON DELETE RESTRICT,
    "created_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_contract_ve_contrac_f6f7e7" UNIQUE ("contract_id", "number")
);
CREATE TABLE "delivery_report" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "channel" VARCHAR(8) NOT NULL,
    "gateway_message_id" VARCHAR(100) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "reason" VARCHAR(60) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_delivery_re_institu_9feaee" UNIQUE ("institution_id", "channel", "gateway_message_id")
);
CREATE TABLE "department" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_department_institu_9830fa" UNIQUE ("institution_id", "name")
);
CREATE TABLE "department_membership" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "department_id" CHAR(36) NOT NULL REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_department__staff_i_4f113c" UNIQUE ("staff_id", "department_id")
);
CREATE TABLE "emergency_access" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "reason" BLOB NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "reviewed_at" TIMESTAMP,
    "review_outcome" VARCHAR(16),
    "review_note" BLOB,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "reviewed_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT
);
CREATE TABLE "flag" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "detail" BLOB,
    "starts_on" DATE,
    "ends_on" DATE,
    "updated_at" TIMESTAMP NOT NULL,
    "author_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT
, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "follow_up_attempt" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "at" TIMESTAMP NOT NULL,
    "channel" VARCHAR(10) NOT NULL,
    "outcome" VARCHAR(16) NOT NULL,
    "note" BLOB,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "task_id" CHAR(36) NOT NULL REFERENCES "follow_up_task" ("id") ON DELETE RESTRICT
);
CREATE TABLE "follow_up_rule" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "rule_key" CHAR(36) NOT NULL,
    "version" INT NOT NULL,
    "active" INT NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "visit_kind" VARCHAR(16),
    "procedure_code" VARCHAR(32),
    "offsets_days" VARCHAR(1000) NOT NULL,
    "assignee" VARCHAR(20) NOT NULL,
    "skip_closed_days" INT NOT NULL,
    "author_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_follow_up_r_institu_7a6a9b" UNIQUE ("institution_id", "rule_key", "version")
);
CREATE TABLE "follow_up_task" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "due_on" DATE NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "reached" INT,
    "condition" VARCHAR(8),
    "needs_help" INT,
    "satisfaction" SMALLINT,
    "notes" BLOB,
    "completed_at" TIMESTAMP,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "activity_id" CHAR(36) REFERENCES "care_plan_activity" ("id") ON DELETE RESTRICT,
    "completed_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "owner_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "rule_id" CHAR(36) REFERENCES "follow_up_rule" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) REFERENCES "visit" ("id") ON DELETE RESTRICT
);
CREATE TABLE "idempotency_key" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "actor_kind" VARCHAR(16) NOT NULL,
    "actor_id" CHAR(36) NOT NULL,
    "key_hash" VARCHAR(64) NOT NULL,
    "request_hash" VARCHAR(64) NOT NULL,
    "action" VARCHAR(20) NOT NULL,
    "resource_type" VARCHAR(40) NOT NULL,
    "resource_id" CHAR(36),
    "patient_id" CHAR(36),
    "request_id" VARCHAR(64) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_idempotency_institu_07f9f8" UNIQUE ("institution_id", "actor_kind", "actor_id", "key_hash")
);
CREATE TABLE "improvement_item" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "problem" VARCHAR(500) NOT NULL,
    "measure" VARCHAR(1000) NOT NULL,
    "deadline" DATE NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "source" VARCHAR(16) NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "created_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) NOT NULL REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
, "survey_month" VARCHAR(7), "survey_questionnaire_key" CHAR(36), "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "improvement_ticket" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "item_id" CHAR(36) NOT NULL REFERENCES "improvement_item" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) NOT NULL REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_improvement_item_id_5e06bf" UNIQUE ("item_id", "ticket_id")
);
CREATE TABLE "institution" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "time_zone" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL
, "audit_retention_months" INT NOT NULL DEFAULT 72, "totp_required" INT NOT NULL DEFAULT 0, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "institution_key" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "version" INT NOT NULL,
    "wrapped_key" BLOB NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_institution_institu_40b92d" UNIQUE ("institution_id", "version")
);
CREATE TABLE "message_gateway" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "channel" VARCHAR(8) NOT NULL,
    "url" VARCHAR(500) NOT NULL,
    "secret" BLOB NOT NULL,
    "timeout_ms" INT NOT NULL,
    "active" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_message_gat_institu_b00c35" UNIQUE ("institution_id", "channel")
);
CREATE TABLE "message_template" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "cause" VARCHAR(32) NOT NULL,
    "channel" VARCHAR(8) NOT NULL,
    "language" VARCHAR(8) NOT NULL,
    "subject" VARCHAR(200) NOT NULL,
    "body" TEXT NOT NULL,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_message_tem_institu_1a5433" UNIQUE ("institution_id", "cause", "channel", "language")
);
CREATE TABLE "messaging_settings" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "reminder_hours_before" INT NOT NULL,
    "quiet_start" VARCHAR(5) NOT NULL,
    "quiet_end" VARCHAR(5) NOT NULL,
    "non_care_cap" INT NOT NULL,
    "non_care_cap_days" INT NOT NULL,
    "portal_change_min_hours" INT NOT NULL,
    "portal_horizon_days" INT NOT NULL,
    "institution_phone" VARCHAR(32) NOT NULL,
    "email_from" VARCHAR(254) NOT NULL,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_messaging_s_institu_7d0597" UNIQUE ("institution_id")
);
CREATE TABLE "notification" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "key" VARCHAR(120) NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "due_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    "cancelled_at" TIMESTAMP,
    "attempts" INT NOT NULL,
    "last_error" VARCHAR(200) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "recipient_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) REFERENCES "ticket" ("id") ON DELETE RESTRICT, "contract_id" CHAR(36) REFERENCES "contract" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_notificatio_institu_310f70" UNIQUE ("institution_id", "key")
);
CREATE TABLE "partner" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "is_active" INT NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_partner_institu_5489ed" UNIQUE ("institution_id", "name")
);
CREATE TABLE "partner_client" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "secret_hash" VARCHAR(64) NOT NULL UNIQUE,
    "scopes" VARCHAR(1000) NOT NULL,
    "rate_limit_per_minute" INT NOT NULL,
    "documents_only" INT NOT NULL,
    "revoked_at" TIMESTAMP,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) NOT NULL REFERENCES "partner" ("id") ON DELETE RESTRICT
);
CREATE TABLE "partner_consent" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "granted" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) NOT NULL REFERENCES "partner" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_partner_con_patient_dce0e1" UNIQUE ("patient_id", "partner_id")
);
CREATE TABLE "partner_document" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    "client_id" CHAR(36) NOT NULL REFERENCES "partner_client" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_partner_doc_client__852f85" UNIQUE ("client_id", "sha256")
);
CREATE TABLE "partner_grant" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "purpose" VARCHAR(200) NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP,
    "created_by_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) NOT NULL REFERENCES "partner" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT
);
CREATE TABLE "partner_token" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "scopes" VARCHAR(1000) NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP,
    "client_id" CHAR(36) NOT NULL REFERENCES "partner_client" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
);
CREATE TABLE "partner_usage" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "institution_id" CHAR(36) NOT NULL,
    "client_id" CHAR(36) NOT NULL,
    "window_start" TIMESTAMP NOT NULL,
    "requests" INT NOT NULL,
    "throttled" INT NOT NULL,
    CONSTRAINT "uid_partner_usa_client__aafc58" UNIQUE ("client_id", "window_start")
);
CREATE TABLE "password_reset" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "code_hash" VARCHAR(64) NOT NULL UNIQUE,
    "expires_at" TIMESTAMP NOT NULL,
    "used_at" TIMESTAMP,
    "created_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_account_id" CHAR(36) REFERENCES "patient_account" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT
);
CREATE TABLE "patient" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "full_name" VARCHAR(100) NOT NULL,
    "sex" VARCHAR(10) NOT NULL,
    "birth_date" DATE,
    "occupation" VARCHAR(100),
    "national_id_type" VARCHAR(32),
    "national_id" BLOB,
    "national_id_bidx" VARCHAR(64),
    "address" BLOB,
    "phone" BLOB,
    "phone_bidx" VARCHAR(64),
    "alt_phone" BLOB,
    "alt_phone_bidx" VARCHAR(64),
    "email" VARCHAR(254),
    "preferred_channel" VARCHAR(10),
    "preferred_language" VARCHAR(16) NOT NULL,
    "contact_consent" INT NOT NULL,
    "contact_channels" VARCHAR(1000) NOT NULL,
    "medical_history" BLOB,
    "diagnoses" BLOB,
    "allergies" BLOB,
    "current_medication" BLOB,
    "diet_preferences" VARCHAR(200),
    "activity_preferences" VARCHAR(200),
    "special_needs" BLOB,
    "segments" VARCHAR(1000) NOT NULL,
    "tags" VARCHAR(1000) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
, "contact_purposes" VARCHAR(1000) NOT NULL DEFAULT '|care|', "alt_phone_last4_bidx" VARCHAR(64), "merged_at" TIMESTAMP, "merged_into_id" CHAR(36) REFERENCES "patient" ("id") ON DELETE RESTRICT, "name_search" VARCHAR(400) NOT NULL DEFAULT '', "phone_last4_bidx" VARCHAR(64), "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "patient_account" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "email" VARCHAR(254) NOT NULL UNIQUE,
    "password_hash" VARCHAR(200) NOT NULL,
    "is_active" INT NOT NULL,
    "failed_logins" INT NOT NULL,
    "locked_until" TIMESTAMP,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL UNIQUE REFERENCES "patient" ("id") ON DELETE RESTRICT
);
CREATE TABLE "patient_invitation" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "code_hash" VARCHAR(64) NOT NULL UNIQUE,
    "expires_at" TIMESTAMP NOT NULL,
    "used_at" TIMESTAMP,
    "created_by_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT
);
CREATE TABLE "patient_session" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "expires_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP,
    "account_id" CHAR(36) NOT NULL REFERENCES "patient_account" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
, "used_after_end_at" TIMESTAMP);
CREATE TABLE "questionnaire" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "key" CHAR(36) NOT NULL,
    "version" INT NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "title" JSON NOT NULL,
    "purpose" JSON NOT NULL,
    "respondent" VARCHAR(10) NOT NULL,
    "subject" VARCHAR(12) NOT NULL,
    "anonymous" INT NOT NULL,
    "items" JSON NOT NULL,
    "scoring" JSON NOT NULL,
    "revision" INT NOT NULL,
    "template" VARCHAR(32),
    "updated_at" TIMESTAMP NOT NULL,
    "author_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_questionnai_institu_69bdbe" UNIQUE ("institution_id", "key", "version")
);
CREATE TABLE "questionnaire_response" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "source" VARCHAR(8) NOT NULL,
    "month" VARCHAR(7) NOT NULL,
    "score" REAL,
    "satisfied" INT,
    "nps" SMALLINT,
    "csat" SMALLINT,
    "low" INT NOT NULL,
    "clinician_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "entered_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "follow_up_ticket_id" CHAR(36) REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "invitation_id" CHAR(36) REFERENCES "survey_invitation" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "questionnaire_id" CHAR(36) NOT NULL REFERENCES "questionnaire" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) REFERENCES "visit" ("id") ON DELETE RESTRICT
);
CREATE TABLE "response_answer" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "month" VARCHAR(7) NOT NULL,
    "link_id" VARCHAR(40) NOT NULL,
    "number" REAL,
    "choice" VARCHAR(40),
    "text" BLOB,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "questionnaire_id" CHAR(36) NOT NULL REFERENCES "questionnaire" ("id") ON DELETE RESTRICT,
    "response_id" CHAR(36) NOT NULL REFERENCES "questionnaire_response" ("id") ON DELETE RESTRICT
);
CREATE TABLE "role_assignment" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "role" VARCHAR(32) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_role_assign_staff_i_3fa3a1" UNIQUE ("staff_id", "role")
);
CREATE TABLE "role_grant" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "role" VARCHAR(32) NOT NULL,
    "reviewed_at" TIMESTAMP,
    "review_outcome" VARCHAR(16),
    "review_note" VARCHAR(1000),
    "granted_by_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "reviewed_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT
);
CREATE TABLE "schedule" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "kind" VARCHAR(10) NOT NULL,
    "week" JSON NOT NULL,
    "slot_minutes" INT NOT NULL,
    "capacity" INT NOT NULL,
    "active" INT NOT NULL,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "clinician_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) NOT NULL REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
);
CREATE TABLE "schedule_exception" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(8) NOT NULL,
    "starts_at" TIMESTAMP NOT NULL,
    "ends_at" TIMESTAMP NOT NULL,
    "capacity" INT,
    "reason" VARCHAR(200) NOT NULL,
    "cancelled_at" TIMESTAMP,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "schedule_id" CHAR(36) NOT NULL REFERENCES "schedule" ("id") ON DELETE RESTRICT
, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "service_item" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "code" VARCHAR(32) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "active" INT NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "description" TEXT, "frequencies" VARCHAR(64) NOT NULL DEFAULT 'per_visit', "standard" TEXT, "unit" VARCHAR(10) NOT NULL DEFAULT 'visit', "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_service_ite_institu_4c45d3" UNIQUE ("institution_id", "code")
);
CREATE TABLE "service_item_price" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "number" INT NOT NULL,
    "unit_price" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "effective_from" DATE NOT NULL,
    "created_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "item_id" CHAR(36) NOT NULL REFERENCES "service_item" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_service_ite_item_id_a4889e" UNIQUE ("item_id", "number"),
    CONSTRAINT "uid_service_ite_item_id_545e7a" UNIQUE ("item_id", "effective_from")
);
CREATE TABLE "session" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "expires_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT
, "used_after_end_at" TIMESTAMP);
CREATE TABLE "sign_in_throttle" (
    "id" VARCHAR(64) NOT NULL  PRIMARY KEY,
    "failed_logins" INT NOT NULL,
    "locked_until" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL
);
CREATE TABLE "sign_in_window" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "address" VARCHAR(64) NOT NULL,
    "window_start" TIMESTAMP NOT NULL,
    "attempts" INT NOT NULL,
    CONSTRAINT "uid_sign_in_win_address_e5d35b" UNIQUE ("address", "window_start")
);
CREATE TABLE "sla_policy" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "level" SMALLINT NOT NULL,
    "first_response_minutes" INT NOT NULL,
    "resolution_minutes" INT NOT NULL,
    "clock" VARCHAR(10) NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT, "version" INT NOT NULL DEFAULT 1,
    CONSTRAINT "uid_sla_policy_institu_7dde00" UNIQUE ("institution_id", "level")
);
CREATE TABLE "staff" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "email" VARCHAR(254) NOT NULL UNIQUE,
    "name" VARCHAR(100) NOT NULL,
    "password_hash" VARCHAR(200) NOT NULL,
    "is_active" INT NOT NULL,
    "is_demo" INT NOT NULL,
    "failed_logins" INT NOT NULL,
    "locked_until" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
, "password_changed_at" TIMESTAMP, "totp_enabled_at" TIMESTAMP, "totp_last_step" BIGINT, "totp_secret" BLOB, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "survey_invitation" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "cause_key" VARCHAR(120) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "token_hash" VARCHAR(64)  UNIQUE,
    "send_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "answered" INT NOT NULL,
    "answered_at" TIMESTAMP,
    "reminded_at" TIMESTAMP,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "clinician_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "contact_id" CHAR(36) REFERENCES "contact" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "follow_up_task_id" CHAR(36) REFERENCES "follow_up_task" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "questionnaire_id" CHAR(36) NOT NULL REFERENCES "questionnaire" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "trigger_id" CHAR(36) REFERENCES "survey_trigger" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) REFERENCES "visit" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_survey_invi_institu_dfcee7" UNIQUE ("institution_id", "cause_key")
);
CREATE TABLE "survey_settings" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "fatigue_days" INT NOT NULL,
    "satisfaction_target" INT NOT NULL,
    "min_cell" INT NOT NULL,
    "link_valid_days" INT NOT NULL,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_survey_sett_institu_90db92" UNIQUE ("institution_id")
);
CREATE TABLE "survey_trigger" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "questionnaire_key" CHAR(36) NOT NULL,
    "event" VARCHAR(20) NOT NULL,
    "visit_kind" VARCHAR(16),
    "delay_hours" INT NOT NULL,
    "reminder_after_days" INT,
    "active" INT NOT NULL,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT
);
CREATE TABLE "ticket" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "caller_name" BLOB,
    "caller_phone" BLOB,
    "channel" VARCHAR(16) NOT NULL,
    "category" VARCHAR(16) NOT NULL,
    "subcategory" VARCHAR(64) NOT NULL,
    "level" SMALLINT NOT NULL,
    "vip" INT NOT NULL,
    "subject" BLOB NOT NULL,
    "description" BLOB,
    "status" VARCHAR(20) NOT NULL,
    "root_cause_category" VARCHAR(16),
    "root_cause" BLOB,
    "resolution" BLOB,
    "feedback" BLOB,
    "received_at" TIMESTAMP NOT NULL,
    "first_responded_at" TIMESTAMP,
    "resolved_at" TIMESTAMP,
    "closed_at" TIMESTAMP,
    "paused_at" TIMESTAMP,
    "response_due_at" TIMESTAMP,
    "response_at_risk_at" TIMESTAMP,
    "resolution_due_at" TIMESTAMP,
    "resolution_at_risk_at" TIMESTAMP,
    "next_due_at" TIMESTAMP,
    "next_at_risk_at" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL,
    "assignee_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "contact_id" CHAR(36) REFERENCES "contact" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "owner_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) REFERENCES "patient" ("id") ON DELETE RESTRICT
, "opened_by_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT, "opened_by_partner_id" CHAR(36) REFERENCES "partner" ("id") ON DELETE RESTRICT, "opened_by_patient" INT NOT NULL DEFAULT 0, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "ticket_event" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "occurred_at" TIMESTAMP NOT NULL,
    "from_status" VARCHAR(20),
    "to_status" VARCHAR(20),
    "internal" INT NOT NULL,
    "note" BLOB,
    "actor_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "ticket_id" CHAR(36) NOT NULL REFERENCES "ticket" ("id") ON DELETE RESTRICT,
    "to_department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "to_staff_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT
);
CREATE TABLE "tortoise_migrations" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "app" VARCHAR(255) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "applied_at" TIMESTAMP NOT NULL,
    CONSTRAINT "uid_tortoise_mi_app_3803a5" UNIQUE ("app", "name")
);
INSERT INTO "tortoise_migrations" VALUES(1,'careloop','0001_initial','2026-12-07 23:41:31.464490+00:00');
INSERT INTO "tortoise_migrations" VALUES(2,'careloop','0002_audit_append_only','2026-12-07 23:41:31.531877+00:00');
INSERT INTO "tortoise_migrations" VALUES(3,'careloop','0003_audit_no_replace','2026-12-07 23:41:31.569481+00:00');
INSERT INTO "tortoise_migrations" VALUES(4,'careloop','0004_lookup_indexes','2026-12-07 23:41:31.696298+00:00');
INSERT INTO "tortoise_migrations" VALUES(5,'careloop','0005_tickets','2026-12-07 23:41:32.101413+00:00');
INSERT INTO "tortoise_migrations" VALUES(6,'careloop','0006_improvement_items','2026-12-07 23:41:32.296355+00:00');
INSERT INTO "tortoise_migrations" VALUES(7,'careloop','0007_attachments','2026-12-07 23:41:32.376266+00:00');
INSERT INTO "tortoise_migrations" VALUES(8,'careloop','0008_audit_checkpoints','2026-12-07 23:41:32.436236+00:00');
INSERT INTO "tortoise_migrations" VALUES(9,'careloop','0009_audit_checkpoint_append_only','2026-12-07 23:41:32.489332+00:00');
INSERT INTO "tortoise_migrations" VALUES(10,'careloop','0010_emergency_access','2026-12-07 23:41:32.534773+00:00');
INSERT INTO "tortoise_migrations" VALUES(11,'careloop','0011_audit_retention','2026-12-07 23:41:32.796363+00:00');
INSERT INTO "tortoise_migrations" VALUES(12,'careloop','0012_partners_and_patients','2026-12-07 23:41:33.722767+00:00');
INSERT INTO "tortoise_migrations" VALUES(13,'careloop','0013_audit_partner_index','2026-12-07 23:41:33.786502+00:00');
INSERT INTO "tortoise_migrations" VALUES(14,'careloop','0014_audit_head_forward','2026-12-07 23:41:33.852529+00:00');
INSERT INTO "tortoise_migrations" VALUES(15,'careloop','0015_role_grant_review','2026-12-07 23:41:34.173539+00:00');
INSERT INTO "tortoise_migrations" VALUES(16,'careloop','0016_care_journey','2026-12-07 23:41:36.120082+00:00');
INSERT INTO "tortoise_migrations" VALUES(17,'careloop','0017_appointments_and_messages','2026-12-07 23:41:39.096431+00:00');
INSERT INTO "tortoise_migrations" VALUES(18,'careloop','0018_surveys','2026-12-07 23:41:43.207330+00:00');
INSERT INTO "tortoise_migrations" VALUES(19,'careloop','0019_contracts','2026-12-07 23:41:50.128488+00:00');
INSERT INTO "tortoise_migrations" VALUES(20,'careloop','0020_portal','2026-12-07 23:42:03.792516+00:00');
INSERT INTO "tortoise_migrations" VALUES(21,'careloop','0021_audit_append','2026-12-07 23:42:04.416690+00:00');
INSERT INTO "tortoise_migrations" VALUES(22,'careloop','0022_audit_subjects','2026-12-07 23:42:05.317140+00:00');
INSERT INTO "tortoise_migrations" VALUES(23,'careloop','0023_audit_inbox','2026-12-07 23:42:06.098292+00:00');
INSERT INTO "tortoise_migrations" VALUES(24,'careloop','0024_principal_notify','2026-12-07 23:42:06.607122+00:00');
INSERT INTO "tortoise_migrations" VALUES(25,'careloop','0025_versions_everywhere','2026-12-07 23:42:08.038253+00:00');
INSERT INTO "tortoise_migrations" VALUES(26,'careloop','0026_audit_link_once','2026-12-07 23:42:08.538247+00:00');
INSERT INTO "tortoise_migrations" VALUES(27,'careloop','0027_audit_inbox_rejected','2026-12-07 23:42:08.655816+00:00');
INSERT INTO "tortoise_migrations" VALUES(28,'careloop','0028_audit_inbox_tidy','2026-12-07 23:42:08.768902+00:00');
INSERT INTO "tortoise_migrations" VALUES(29,'careloop','0029_principal_time_zone','2026-12-07 23:42:09.281256+00:00');
INSERT INTO "tortoise_migrations" VALUES(30,'careloop','0030_audit_link_columns','2026-12-07 23:42:09.384963+00:00');
INSERT INTO "tortoise_migrations" VALUES(31,'careloop','0031_audit_seal_idle_inbox','2026-12-07 23:42:09.833117+00:00');
INSERT INTO "tortoise_migrations" VALUES(32,'careloop','0032_audit_disclosure_index','2026-12-07 23:42:10.409752+00:00');
INSERT INTO "tortoise_migrations" VALUES(33,'careloop','0033_audit_free_length_columns','2026-12-07 23:42:11.037684+00:00');
INSERT INTO "tortoise_migrations" VALUES(34,'careloop','0034_sign_in_throttle','2026-12-07 23:42:11.204095+00:00');
INSERT INTO "tortoise_migrations" VALUES(35,'careloop','0035_sign_in_window','2026-12-07 23:42:11.364945+00:00');
INSERT INTO "tortoise_migrations" VALUES(36,'careloop','0036_communication_lease','2026-12-07 23:42:12.036182+00:00');
INSERT INTO "tortoise_migrations" VALUES(37,'careloop','0037_communication_rescheduled','2026-12-07 23:42:12.571663+00:00');
INSERT INTO "tortoise_migrations" VALUES(38,'careloop','0038_contacts_on_file','2026-12-07 23:42:12.692779+00:00');
INSERT INTO "tortoise_migrations" VALUES(39,'careloop','0039_list_indexes','2026-12-07 23:42:15.996833+00:00');
INSERT INTO "tortoise_migrations" VALUES(40,'careloop','0040_audit_policy_index','2026-12-07 23:42:16.586912+00:00');
INSERT INTO "tortoise_migrations" VALUES(41,'careloop','0041_communication_reserved','2026-12-07 23:42:17.081591+00:00');
INSERT INTO "tortoise_migrations" VALUES(42,'careloop','0045_delivery_report','2026-12-07 23:42:17.226739+00:00');
INSERT INTO "tortoise_migrations" VALUES(43,'careloop','0049_session_used_after_end','2026-12-07 23:42:18.480113+00:00');
INSERT INTO "tortoise_migrations" VALUES(44,'careloop','0050_campaign_approval','2026-12-07 23:42:19.284042+00:00');
INSERT INTO "tortoise_migrations" VALUES(45,'careloop','0051_audit_append_once','2026-12-07 23:42:19.783845+00:00');
INSERT INTO "tortoise_migrations" VALUES(46,'careloop','0052_audit_head_missing','2026-12-07 23:42:19.922764+00:00');
INSERT INTO "tortoise_migrations" VALUES(47,'careloop','0053_idempotency_key','2026-12-07 23:42:20.610281+00:00');
CREATE TABLE "visit" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "planned_at" TIMESTAMP NOT NULL,
    "arrived_at" TIMESTAMP,
    "started_at" TIMESTAMP,
    "ended_at" TIMESTAMP,
    "cancelled_at" TIMESTAMP,
    "revisit_on" DATE,
    "reason" BLOB,
    "summary" BLOB,
    "outcome" BLOB,
    "treatment_plan" BLOB,
    "medication_guidance" BLOB,
    "rehabilitation" BLOB,
    "precautions" BLOB,
    "feedback" BLOB,
    "internal_note" BLOB,
    "version" INT NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "clinician_id" CHAR(36) REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "department_id" CHAR(36) REFERENCES "department" ("id") ON DELETE RESTRICT,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "partner_id" CHAR(36) REFERENCES "partner" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT
);
CREATE TABLE "visit_code" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "kind" VARCHAR(10) NOT NULL,
    "system" VARCHAR(10) NOT NULL,
    "code" BLOB NOT NULL,
    "code_bidx" VARCHAR(64) NOT NULL,
    "text" BLOB,
    "status" VARCHAR(10),
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "patient_id" CHAR(36) NOT NULL REFERENCES "patient" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) NOT NULL REFERENCES "visit" ("id") ON DELETE RESTRICT
, "version" INT NOT NULL DEFAULT 1);
CREATE TABLE "visit_staff" (
    "id" CHAR(36) NOT NULL  PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "institution_id" CHAR(36) NOT NULL REFERENCES "institution" ("id") ON DELETE RESTRICT,
    "staff_id" CHAR(36) NOT NULL REFERENCES "staff" ("id") ON DELETE RESTRICT,
    "visit_id" CHAR(36) NOT NULL REFERENCES "visit" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_visit_staff_visit_i_e098f6" UNIQUE ("visit_id", "staff_id")
);
CREATE INDEX "idx_audit_event_institu_98ab2e" ON "audit_event" ("institution_id", "actor_id");
CREATE INDEX "idx_audit_event_institu_80b80a" ON "audit_event" ("institution_id", "occurred_at");
CREATE INDEX "idx_patient_nationa_6f6151" ON "patient" ("national_id_bidx");
CREATE INDEX "idx_patient_phone_b_48296f" ON "patient" ("phone_bidx");
CREATE INDEX "idx_patient_alt_pho_66167f" ON "patient" ("alt_phone_bidx");
CREATE INDEX "idx_patient_status_8515e2" ON "patient" ("status");
CREATE INDEX "idx_patient_institu_f24542" ON "patient" ("institution_id", "full_name");
CREATE INDEX "idx_patient_institu_10f5bb" ON "patient" ("institution_id", "department_id");
CREATE INDEX "idx_contact_phone_b_721791" ON "contact" ("phone_bidx");
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
CREATE TRIGGER audit_event_no_replace BEFORE INSERT ON audit_event
   WHEN EXISTS (SELECT 1 FROM audit_event
                WHERE id = NEW.id OR (institution_id = NEW.institution_id AND seq = NEW.seq))
   BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END;
CREATE INDEX "idx_care_team_m_institu_4e4828" ON "care_team_member" ("institution_id", "staff_id", "patient_id");
CREATE INDEX "idx_care_team_m_institu_fb366e" ON "care_team_member" ("institution_id", "patient_id");
CREATE INDEX "idx_contact_institu_cac57f" ON "contact" ("institution_id", "patient_id");
CREATE INDEX "idx_ticket_institu_e190db" ON "ticket" ("institution_id", "next_due_at");
CREATE INDEX "idx_ticket_institu_86afd4" ON "ticket" ("institution_id", "department_id", "status");
CREATE INDEX "idx_ticket_institu_7463bd" ON "ticket" ("institution_id", "patient_id");
CREATE INDEX "idx_notificatio_sent_at_555704" ON "notification" ("sent_at", "due_at");
CREATE INDEX "idx_ticket_even_ticket__34ef48" ON "ticket_event" ("ticket_id", "occurred_at");
CREATE INDEX "idx_improvement_institu_c66bd8" ON "improvement_item" ("institution_id", "status", "deadline");
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_replace BEFORE INSERT ON audit_checkpoint
       WHEN EXISTS (SELECT 1 FROM audit_checkpoint
                    WHERE id = NEW.id OR (institution_id = NEW.institution_id AND last_seq = NEW.last_seq))
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE INDEX "idx_emergency_a_institu_dddbd5" ON "emergency_access" ("institution_id", "staff_id", "expires_at");
CREATE INDEX "idx_emergency_a_institu_dbc878" ON "emergency_access" ("institution_id", "reviewed_at");
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN
         SELECT RAISE(ABORT, 'audit_event is append-only')
         FROM (SELECT max(6, coalesce((SELECT audit_retention_months FROM institution
                                       WHERE id = OLD.institution_id), 72)) AS m)
         WHERE NOT EXISTS (SELECT 1 FROM audit_archive a
                           WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
            OR julianday(OLD.occurred_at) >= min(
                 julianday('now', '-' || m || ' months'),
                 julianday('now', 'start of month', '-' || (m - 1) || ' months', '-1 day')
                   + julianday('now') - julianday('now', 'start of day'));
       END;
CREATE TRIGGER audit_archive_no_update BEFORE UPDATE ON audit_archive
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END;
CREATE TRIGGER audit_archive_no_delete BEFORE DELETE ON audit_archive
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END;
CREATE TRIGGER audit_archive_no_replace BEFORE INSERT ON audit_archive
       WHEN EXISTS (SELECT 1 FROM audit_archive
                    WHERE id = NEW.id OR (institution_id = NEW.institution_id AND up_to_seq = NEW.up_to_seq))
       BEGIN SELECT RAISE(ABORT, 'audit_archive is append-only'); END;
CREATE INDEX "idx_partner_gra_institu_137c8a" ON "partner_grant" ("institution_id", "partner_id", "patient_id");
CREATE INDEX "idx_partner_gra_institu_86bdf4" ON "partner_grant" ("institution_id", "patient_id");
CREATE INDEX "idx_audit_event_institu_979f68" ON "audit_event" ("institution_id", "actor_kind", "seq");
CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
       WHEN NEW.institution_id IS NOT OLD.institution_id OR NEW.last_seq < OLD.last_seq
         OR (NEW.last_seq = OLD.last_seq AND NEW.last_hash IS NOT OLD.last_hash)
       BEGIN SELECT RAISE(ABORT, 'audit_chain_head only moves forward'); END;
CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
       BEGIN SELECT RAISE(ABORT, 'audit_chain_head only moves forward'); END;
CREATE TRIGGER audit_chain_head_no_replace BEFORE INSERT ON audit_chain_head
       WHEN EXISTS (SELECT 1 FROM audit_chain_head
                    WHERE institution_id = NEW.institution_id
                      AND (last_seq > NEW.last_seq OR (last_seq = NEW.last_seq AND last_hash IS NOT NEW.last_hash)))
       BEGIN SELECT RAISE(IGNORE); END;
CREATE INDEX "idx_role_grant_institu_3ccf17" ON "role_grant" ("institution_id", "reviewed_at");
CREATE INDEX "idx_flag_institu_16e1bc" ON "flag" ("institution_id", "patient_id", "status");
CREATE INDEX "idx_follow_up_r_institu_1d1475" ON "follow_up_rule" ("institution_id", "active");
CREATE INDEX "idx_visit_institu_e86ad4" ON "visit" ("institution_id", "patient_id", "planned_at");
CREATE INDEX "idx_visit_institu_9f97a6" ON "visit" ("institution_id", "department_id", "status");
CREATE INDEX "idx_visit_institu_c59afc" ON "visit" ("institution_id", "status", "planned_at");
CREATE INDEX "idx_care_plan_institu_42f8f8" ON "care_plan" ("institution_id", "patient_id", "status");
CREATE INDEX "idx_care_plan_a_institu_0429cc" ON "care_plan_activity" ("institution_id", "plan_id");
CREATE INDEX "idx_follow_up_t_institu_28d549" ON "follow_up_task" ("institution_id", "owner_id", "status", "due_on");
CREATE INDEX "idx_follow_up_t_institu_651c4a" ON "follow_up_task" ("institution_id", "department_id", "status", "due_on");
CREATE INDEX "idx_follow_up_t_institu_945a9b" ON "follow_up_task" ("institution_id", "patient_id", "status");
CREATE INDEX "idx_follow_up_a_institu_6545ca" ON "follow_up_attempt" ("institution_id", "task_id");
CREATE INDEX "idx_visit_code_institu_e52a3d" ON "visit_code" ("institution_id", "code_bidx", "status");
CREATE INDEX "idx_visit_code_institu_43e9d5" ON "visit_code" ("institution_id", "visit_id");
CREATE INDEX "idx_schedule_institu_3d092f" ON "schedule" ("institution_id", "department_id", "active");
CREATE INDEX "idx_appointment_institu_9567f0" ON "appointment" ("institution_id", "schedule_id", "slot_start");
CREATE INDEX "idx_appointment_institu_a06e3a" ON "appointment" ("institution_id", "patient_id", "slot_start");
CREATE INDEX "idx_appointment_institu_dc403e" ON "appointment" ("institution_id", "status", "slot_end");
CREATE INDEX "idx_communicati_status_776a31" ON "communication" ("status", "due_at");
CREATE INDEX "idx_communicati_institu_d690e3" ON "communication" ("institution_id", "patient_id", "due_at");
CREATE INDEX "idx_communicati_institu_b804eb" ON "communication" ("institution_id", "campaign_id", "status");
CREATE INDEX "idx_communicati_gateway_2bbb99" ON "communication" ("gateway_message_id");
CREATE INDEX "idx_schedule_ex_institu_89d8e6" ON "schedule_exception" ("institution_id", "schedule_id", "starts_at");
CREATE INDEX "idx_questionnai_institu_b48c7b" ON "questionnaire" ("institution_id", "status");
CREATE INDEX "idx_survey_trig_institu_2f87a6" ON "survey_trigger" ("institution_id", "event", "active");
CREATE INDEX "idx_survey_invi_institu_e68f3a" ON "survey_invitation" ("institution_id", "patient_id", "created_at");
CREATE INDEX "idx_survey_invi_institu_591127" ON "survey_invitation" ("institution_id", "questionnaire_id", "status");
CREATE INDEX "idx_survey_invi_status_a1265b" ON "survey_invitation" ("status", "send_at");
CREATE INDEX "idx_questionnai_institu_6b381e" ON "questionnaire_response" ("institution_id", "questionnaire_id", "department_id", "month");
CREATE INDEX "idx_questionnai_institu_a3c1ef" ON "questionnaire_response" ("institution_id", "patient_id");
CREATE INDEX "idx_response_an_institu_13a75b" ON "response_answer" ("institution_id", "questionnaire_id", "department_id", "month", "link_id", "number", "choice");
CREATE INDEX "idx_response_an_institu_aa011a" ON "response_answer" ("institution_id", "response_id");
CREATE INDEX "idx_contract_institu_7cacec" ON "contract" ("institution_id", "patient_id", "start_on");
CREATE INDEX "idx_contract_institu_a1b8be" ON "contract" ("institution_id", "status", "end_on");
CREATE INDEX "idx_service_ite_institu_4263b4" ON "service_item_price" ("institution_id", "item_id", "effective_from");
CREATE TRIGGER contract_version_frozen BEFORE UPDATE ON contract_version
        WHEN (OLD.status <> 'draft' AND (NEW.contract_id IS NOT OLD.contract_id OR NEW.number IS NOT OLD.number OR NEW.effective_on IS NOT OLD.effective_on OR NEW.end_on IS NOT OLD.end_on OR NEW.billing_period IS NOT OLD.billing_period OR NEW.deposit IS NOT OLD.deposit OR NEW.period_total IS NOT OLD.period_total OR NEW.notice_days IS NOT OLD.notice_days OR NEW.auto_renew IS NOT OLD.auto_renew OR NEW.rights_duties IS NOT OLD.rights_duties OR NEW.clauses IS NOT OLD.clauses OR NEW.change_summary IS NOT OLD.change_summary OR NEW.document_sha256 IS NOT OLD.document_sha256 OR NEW.document_key IS NOT OLD.document_key OR NEW.document_size IS NOT OLD.document_size OR NEW.sent_at IS NOT OLD.sent_at))
          OR (OLD.status IN ('signed', 'withdrawn') AND NEW.status IS NOT OLD.status)
        BEGIN SELECT RAISE(ABORT, 'contract_version is frozen once sent for signature'); END;
CREATE TRIGGER contract_version_no_delete BEFORE DELETE ON contract_version WHEN OLD.status <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_version is frozen once sent for signature'); END;
CREATE TRIGGER contract_item_frozen_insert BEFORE INSERT ON contract_item
        WHEN (SELECT status FROM contract_version WHERE id = NEW.contract_version_id) <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END;
CREATE TRIGGER contract_item_frozen_update BEFORE UPDATE ON contract_item
        WHEN (SELECT status FROM contract_version WHERE id = OLD.contract_version_id) <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END;
CREATE TRIGGER contract_item_frozen_delete BEFORE DELETE ON contract_item
        WHEN (SELECT status FROM contract_version WHERE id = OLD.contract_version_id) <> 'draft'
        BEGIN SELECT RAISE(ABORT, 'contract_item is frozen once sent for signature'); END;
CREATE TRIGGER contract_signature_no_update BEFORE UPDATE ON contract_signature
        BEGIN SELECT RAISE(ABORT, 'contract_signature is append-only'); END;
CREATE TRIGGER contract_signature_no_delete BEFORE DELETE ON contract_signature
        BEGIN SELECT RAISE(ABORT, 'contract_signature is append-only'); END;
CREATE INDEX "idx_patient_institu_e809c8" ON "patient" ("institution_id", "phone_last4_bidx");
CREATE INDEX "idx_patient_institu_741f83" ON "patient" ("institution_id", "alt_phone_last4_bidx");
CREATE INDEX "idx_audit_patie_institu_fda3a7" ON "audit_patient_index" ("institution_id", "patient_id", "seq");
CREATE INDEX "idx_audit_patie_institu_67f456" ON "audit_patient_index" ("institution_id", "occurred_at");
CREATE TRIGGER audit_patient_index_no_update BEFORE UPDATE ON audit_patient_index
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END;
CREATE TRIGGER audit_patient_index_no_delete BEFORE DELETE ON audit_patient_index
       WHEN EXISTS (SELECT 1 FROM audit_event e WHERE e.institution_id = OLD.institution_id AND e.seq = OLD.seq)
         OR NOT EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END;
CREATE TRIGGER audit_patient_index_no_replace BEFORE INSERT ON audit_patient_index
       WHEN EXISTS (SELECT 1 FROM audit_patient_index WHERE id = NEW.id
                    OR (institution_id = NEW.institution_id AND seq = NEW.seq AND patient_id = NEW.patient_id))
       BEGIN SELECT RAISE(ABORT, 'audit_patient_index is append-only'); END;
CREATE INDEX "audit_patient_index_disclosures" ON "audit_patient_index" ("institution_id", "id") WHERE actor_kind = 'partner' AND action = 'read' AND outcome = 'allowed';
CREATE INDEX "idx_ticket_institu_7fde70" ON "ticket" ("institution_id", "id");
CREATE INDEX "idx_ticket_institu_f6e1d8" ON "ticket" ("institution_id", "created_at", "id");
CREATE INDEX "idx_ticket_institu_afbf77" ON "ticket" ("institution_id", "updated_at", "id");
CREATE INDEX "idx_ticket_institu_e0a7d0" ON "ticket" ("institution_id", "opened_by_id", "id");
CREATE INDEX "idx_ticket_institu_6d735d" ON "ticket" ("institution_id", "opened_by_partner_id", "id");
CREATE INDEX "idx_questionnai_institu_0e4ac2" ON "questionnaire_response" ("institution_id", "id");
CREATE INDEX "audit_event_policy" ON "audit_event" ("institution_id", "seq") WHERE resource_type = 'policy';
CREATE INDEX "idx_idempotency_created_98dcfd" ON "idempotency_key" ("created_at");
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('tortoise_migrations',47);
INSERT INTO "sqlite_sequence" VALUES('audit_patient_index',0);
