CREATE FUNCTION audit_append(chain uuid, events jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
  IF audit_seal(chain, false) IS NULL THEN
    INSERT INTO audit_inbox (institution_id, event, mac)
      SELECT chain, e.item - 'mac', coalesce(e.item->>'mac', '')
      FROM jsonb_array_elements(events) WITH ORDINALITY AS e(item, n) ORDER BY e.n;
    RETURN NULL;
  END IF;
  RETURN audit_link(chain, events);
END $$;
CREATE FUNCTION audit_archive_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_archive is append-only'; END $$;
CREATE FUNCTION audit_chain_head_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND NEW.institution_id = OLD.institution_id
            AND (NEW.last_seq > OLD.last_seq OR (NEW.last_seq = OLD.last_seq AND NEW.last_hash = OLD.last_hash))
         THEN RETURN NEW;
         END IF;
         RAISE EXCEPTION 'audit_chain_head only moves forward';
       END $$;
CREATE FUNCTION audit_checkpoint_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_checkpoint is append-only'; END $$;
CREATE FUNCTION audit_event_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN
         IF TG_OP = 'DELETE'
            AND EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
            AND OLD.occurred_at AT TIME ZONE 'UTC' < now() AT TIME ZONE 'UTC' - make_interval(
                  months => GREATEST(6, coalesce((SELECT audit_retention_months FROM institution
                                                  WHERE id = OLD.institution_id), 72)))
         THEN RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit_event is append-only';
       END $$;
CREATE FUNCTION audit_event_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$;
CREATE FUNCTION audit_inbox_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       DECLARE
         stack text;
       BEGIN
         IF TG_OP = 'DELETE' THEN
           GET DIAGNOSTICS stack = PG_CONTEXT;
           IF stack LIKE '%function audit_seal(uuid,boolean) %' THEN RETURN OLD; END IF;
         END IF;
         RAISE EXCEPTION 'audit_inbox: events leave only by being sealed into the chain';
       END $$;
CREATE FUNCTION audit_inbox_place() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN
         NEW.id := nextval(pg_get_serial_sequence('audit_inbox', 'id'));
         NEW.created_at := clock_timestamp();
         RETURN NEW;
       END $$;
CREATE FUNCTION audit_inbox_rejected_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       DECLARE
         stack text;
       BEGIN
         IF TG_OP = 'INSERT' THEN
           GET DIAGNOSTICS stack = PG_CONTEXT;
           IF stack LIKE '%function audit_seal(uuid,boolean) %' THEN RETURN NEW; END IF;
         END IF;
         RAISE EXCEPTION 'audit_inbox_rejected: rows are set aside by audit_seal alone, and kept';
       END $$;
CREATE FUNCTION audit_link(chain uuid, items jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
  item jsonb;
  r jsonb;
  patients jsonb;
  head_seq bigint;
  head_hash text;
  new_hash text;
  linked integer := 0;
BEGIN
  SELECT last_seq, last_hash INTO head_seq, head_hash FROM audit_chain_head WHERE institution_id = chain;
  FOR item IN SELECT value FROM jsonb_array_elements(items) LOOP
    new_hash := encode(sha256(convert_to(
      (item->>'body_head') || '"' || (head_seq + 1) || '"' || (item->>'body_middle') || '"' || head_hash || '"]',
      'UTF8')), 'hex');
    r := item->'row';
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' AND r IS NOT NULL THEN  -- as jsonb_populate_record refused it
      RAISE EXCEPTION 'audit_link: an event''s row must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- A node still on 0021's code during a rolling upgrade sends no patients: its event's patient_id is the one.
    patients := coalesce(item->'patients', CASE WHEN r->>'patient_id' IS NULL THEN '[]'::jsonb
                                                ELSE jsonb_build_array(r->>'patient_id') END);
    INSERT INTO audit_event (id, institution_id, seq, occurred_at, actor_kind, actor_id, token_id, action,
                             resource_type, resource_id, patient_id, field_classes, fields_read, outcome, reason,
                             policy_rule, request_id, client_address, user_agent, subjects, mac, prev_hash, hash)
    VALUES ((r->>'id')::uuid, chain, head_seq + 1, (r->>'occurred_at')::timestamptz,
            r->>'actor_kind', (r->>'actor_id')::uuid, (r->>'token_id')::uuid, r->>'action', r->>'resource_type',
            (r->>'resource_id')::uuid, (r->>'patient_id')::uuid, r->>'field_classes', r->>'fields_read',
            r->>'outcome', r->>'reason', r->>'policy_rule', r->>'request_id', r->>'client_address',
            r->>'user_agent', coalesce(r->>'subjects', ''), coalesce(item->>'mac', ''), head_hash, new_hash)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN  -- its id is taken: the same event appended again (its answer was lost) is skipped
      IF NOT EXISTS (
          SELECT 1 FROM audit_event e
          WHERE e.id = (r->>'id')::uuid AND e.institution_id = chain AND e.mac = coalesce(item->>'mac', '')
            AND e.hash = encode(sha256(convert_to((item->>'body_head') || '"' || e.seq || '"' || (item->>'body_middle')
                                                  || '"' || e.prev_hash || '"]', 'UTF8')), 'hex')
            AND ARRAY(SELECT i.patient_id FROM audit_patient_index i WHERE i.institution_id = chain AND i.seq = e.seq
                      ORDER BY 1)
                = ARRAY(SELECT DISTINCT patient::uuid FROM jsonb_array_elements_text(patients) AS patient ORDER BY 1))
      THEN
        RAISE EXCEPTION 'audit_link: another event holds this event''s id' USING ERRCODE = '23505';
      END IF;
      CONTINUE;
    END IF;
    head_seq := head_seq + 1;
    INSERT INTO audit_patient_index (institution_id, seq, patient_id, occurred_at, actor_kind, actor_id, action,
                                     outcome)
      SELECT chain, head_seq, patient::uuid, (r->>'occurred_at')::timestamptz, r->>'actor_kind',
             (r->>'actor_id')::uuid, r->>'action', r->>'outcome'
      FROM jsonb_array_elements_text(patients) AS patient;
    head_hash := new_hash;
    linked := linked + 1;
  END LOOP;
  IF linked > 0 THEN
    UPDATE audit_chain_head SET last_seq = head_seq, last_hash = head_hash WHERE institution_id = chain;
  END IF;
  RETURN head_seq;
END $$;
CREATE FUNCTION audit_patient_index_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN
         IF TG_OP = 'DELETE'
            AND NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.institution_id = OLD.institution_id AND e.seq = OLD.seq)
            AND EXISTS (SELECT 1 FROM audit_archive a
                        WHERE a.institution_id = OLD.institution_id AND a.up_to_seq >= OLD.seq)
         THEN RETURN OLD;
         END IF;
         RAISE EXCEPTION 'audit_patient_index is append-only';
       END $$;
CREATE FUNCTION audit_patient_index_refuse() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
       BEGIN RAISE EXCEPTION 'audit_patient_index is append-only'; END $$;
CREATE FUNCTION audit_seal(chain uuid, wait boolean) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO '$user', 'public'
    AS $$
DECLARE
  head_seq bigint;
  items jsonb;
  taken bigint[];
  waiting record;
BEGIN
  IF wait THEN
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  ELSE
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE SKIP LOCKED;
  END IF;
  IF NOT FOUND THEN
    IF NOT wait AND EXISTS (SELECT 1 FROM audit_chain_head WHERE institution_id = chain) THEN
      RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_event WHERE institution_id = chain)
       OR EXISTS (SELECT 1 FROM audit_archive WHERE institution_id = chain)
       OR EXISTS (SELECT 1 FROM audit_checkpoint WHERE institution_id = chain) THEN
      RAISE EXCEPTION 'audit_seal: the chain head is missing, though the chain has begun' USING ERRCODE = 'CL001';
    END IF;
    INSERT INTO audit_chain_head (institution_id, last_seq, last_hash) VALUES (chain, 0, repeat('0', 64))
      ON CONFLICT DO NOTHING;
    SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain FOR UPDATE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM audit_inbox WHERE institution_id = chain) THEN
    RETURN head_seq;
  END IF;
  LOOP  -- the oldest posts first, a chunk at a time (a backlog must not exceed one jsonb value's limits)
    SELECT array_agg(id ORDER BY id) INTO taken
      FROM (SELECT id FROM audit_inbox WHERE institution_id = chain ORDER BY id LIMIT 500) AS oldest;
    EXIT WHEN taken IS NULL;
    BEGIN
      SELECT jsonb_agg(event || jsonb_build_object('mac', mac) ORDER BY id) INTO items
        FROM audit_inbox WHERE id = ANY(taken);
      PERFORM audit_link(chain, items);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      FOR waiting IN SELECT * FROM audit_inbox WHERE id = ANY(taken) ORDER BY id LOOP
        BEGIN
          PERFORM audit_link(chain, jsonb_build_array(waiting.event || jsonb_build_object('mac', waiting.mac)));
        EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
          INSERT INTO audit_inbox_rejected (id, institution_id, posted_at, event, mac, sqlstate)
            VALUES (waiting.id, chain, waiting.created_at, waiting.event, waiting.mac, SQLSTATE);
        END;
      END LOOP;
    END;
    DELETE FROM audit_inbox WHERE id = ANY(taken);
  END LOOP;
  SELECT last_seq INTO head_seq FROM audit_chain_head WHERE institution_id = chain;
  RETURN head_seq;
END $$;
CREATE FUNCTION careloop_institution_zone_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
  PERFORM pg_notify('careloop_principals', '*');
  RETURN NULL;
END $$;
CREATE FUNCTION careloop_principal_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
  before_id text;
  after_id text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('careloop_principals', '*');
    RETURN NULL;
  END IF;
  -- TG_ARGV[0] names the column holding the account's id
  IF TG_OP <> 'INSERT' THEN
    before_id := to_jsonb(OLD) ->> TG_ARGV[0];
    PERFORM pg_notify('careloop_principals', coalesce(before_id, '*'));
  END IF;
  IF TG_OP <> 'DELETE' THEN
    after_id := to_jsonb(NEW) ->> TG_ARGV[0];
    IF after_id IS DISTINCT FROM before_id THEN
      PERFORM pg_notify('careloop_principals', coalesce(after_id, '*'));
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION contacts_on_file(institution uuid, file uuid, up_to integer) RETURNS bigint
    LANGUAGE sql
    AS $$
  SELECT count(*) FROM (SELECT 1 FROM contact WHERE institution_id = institution AND patient_id = file
                        LIMIT up_to) AS counted
$$;
CREATE FUNCTION contract_item_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        DECLARE version_id uuid;
        BEGIN
          IF TG_OP = 'INSERT' THEN version_id := NEW.contract_version_id; ELSE version_id := OLD.contract_version_id; END IF;
          IF (SELECT status FROM contract_version WHERE id = version_id) <> 'draft' THEN
            RAISE EXCEPTION 'contract_item is frozen once sent for signature';
          END IF;
          IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
          RETURN NEW;
        END $$;
CREATE FUNCTION contract_signature_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN RAISE EXCEPTION 'contract_signature is append-only'; END $$;
CREATE FUNCTION contract_version_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN
            IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'contract_version is frozen once sent for signature'; END IF;
            RETURN OLD;
          END IF;
          IF (OLD.status <> 'draft' AND ROW(NEW.contract_id, NEW.number, NEW.effective_on, NEW.end_on, NEW.billing_period, NEW.deposit, NEW.period_total, NEW.notice_days, NEW.auto_renew, NEW.rights_duties, NEW.clauses, NEW.change_summary, NEW.document_sha256, NEW.document_key, NEW.document_size, NEW.sent_at) IS DISTINCT FROM ROW(OLD.contract_id, OLD.number, OLD.effective_on, OLD.end_on, OLD.billing_period, OLD.deposit, OLD.period_total, OLD.notice_days, OLD.auto_renew, OLD.rights_duties, OLD.clauses, OLD.change_summary, OLD.document_sha256, OLD.document_key, OLD.document_size, OLD.sent_at))
             OR (OLD.status IN ('signed', 'withdrawn') AND NEW.status IS DISTINCT FROM OLD.status) THEN
            RAISE EXCEPTION 'contract_version is frozen once sent for signature';
          END IF;
          RETURN NEW;
        END $$;
CREATE TABLE appointment (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    slot_start timestamp with time zone NOT NULL,
    slot_end timestamp with time zone NOT NULL,
    seat integer,
    status character varying(10) NOT NULL,
    channel character varying(12) NOT NULL,
    reason bytea,
    arrived_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    cancellation_reason character varying(12),
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    booked_by_id uuid,
    institution_id uuid NOT NULL,
    partner_id uuid,
    patient_id uuid NOT NULL,
    rescheduled_from_id uuid,
    schedule_id uuid NOT NULL,
    visit_id uuid
);
CREATE TABLE attachment (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    filename bytea NOT NULL,
    content_type character varying(100) NOT NULL,
    size integer NOT NULL,
    sha256 character varying(64) NOT NULL,
    storage_key character varying(64) NOT NULL,
    institution_id uuid NOT NULL,
    ticket_id uuid NOT NULL,
    uploaded_by_id uuid
);
CREATE TABLE audit_archive (
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    up_to_seq bigint NOT NULL,
    up_to_hash character varying(64) NOT NULL,
    archived_at timestamp with time zone NOT NULL,
    events bigint NOT NULL,
    sha256 character varying(64) NOT NULL
);
COMMENT ON TABLE audit_archive IS 'Where the archived start of a chain ends: its last sequence number and hash.';
CREATE TABLE audit_chain_head (
    institution_id uuid NOT NULL,
    last_seq bigint NOT NULL,
    last_hash character varying(64) NOT NULL
);
COMMENT ON TABLE audit_chain_head IS 'The last sequence number and hash per institution: the lock appends serialise on.';
CREATE TABLE audit_checkpoint (
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    last_seq bigint NOT NULL,
    head_hash character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    key_id character varying(16) NOT NULL,
    signature character varying(128) NOT NULL
);
COMMENT ON TABLE audit_checkpoint IS 'A signed statement of a chain''s head at a moment: institution, last sequence number, head';
CREATE TABLE audit_event (
    id uuid NOT NULL,
    institution_id uuid NOT NULL,
    seq bigint NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    actor_kind character varying(16) NOT NULL,
    actor_id uuid,
    token_id uuid,
    action character varying(32) NOT NULL,
    resource_type character varying(32) NOT NULL,
    resource_id uuid,
    patient_id uuid,
    field_classes character varying(200) NOT NULL,
    fields_read text NOT NULL,
    outcome character varying(16) NOT NULL,
    reason character varying(64) NOT NULL,
    policy_rule text NOT NULL,
    request_id character varying(64) NOT NULL,
    client_address character varying(64) NOT NULL,
    user_agent character varying(200) NOT NULL,
    prev_hash character varying(64) NOT NULL,
    hash character varying(64) NOT NULL,
    subjects text DEFAULT ''::text NOT NULL,
    mac character varying(64) DEFAULT ''::character varying NOT NULL
);
CREATE TABLE audit_inbox (
    id bigint NOT NULL,
    institution_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    event jsonb NOT NULL,
    mac character varying(64) DEFAULT ''::character varying NOT NULL
);
CREATE SEQUENCE audit_inbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE audit_inbox_id_seq OWNED BY audit_inbox.id;
CREATE TABLE audit_inbox_rejected (
    id bigint NOT NULL,
    institution_id uuid NOT NULL,
    posted_at timestamp with time zone NOT NULL,
    rejected_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    event jsonb NOT NULL,
    mac character varying(64) NOT NULL,
    sqlstate character varying(5) NOT NULL
);
CREATE TABLE audit_patient_index (
    id bigint NOT NULL,
    institution_id uuid NOT NULL,
    seq bigint NOT NULL,
    patient_id uuid NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    actor_kind character varying(16) NOT NULL,
    actor_id uuid,
    action character varying(32) NOT NULL,
    outcome character varying(16) NOT NULL
);
COMMENT ON TABLE audit_patient_index IS 'Which events are about which patient: one row per event and patient.';
CREATE SEQUENCE audit_patient_index_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE audit_patient_index_id_seq OWNED BY audit_patient_index.id;
CREATE TABLE business_calendar (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    week jsonb NOT NULL,
    workday_hours jsonb NOT NULL,
    holidays jsonb NOT NULL,
    workdays jsonb NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE business_calendar IS 'Working hours per weekday (ISO, Monday = 1), public holidays and make-up working days.';
CREATE TABLE campaign (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    purpose character varying(10) NOT NULL,
    cause character varying(32) NOT NULL,
    subject character varying(200) NOT NULL,
    body text NOT NULL,
    audience jsonb NOT NULL,
    status character varying(10) NOT NULL,
    recipients integer NOT NULL,
    queued integer NOT NULL,
    refused jsonb NOT NULL,
    cursor character varying(60),
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    author_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    approved_by_id uuid,
    approved_at timestamp with time zone
);
CREATE TABLE care_plan (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    status character varying(10) NOT NULL,
    title bytea NOT NULL,
    goals bytea,
    starts_on date NOT NULL,
    ends_on date,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    author_id uuid NOT NULL,
    department_id uuid,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    visit_id uuid
);
CREATE TABLE care_plan_activity (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(16) NOT NULL,
    due_on date NOT NULL,
    description bytea,
    status character varying(10) NOT NULL,
    institution_id uuid NOT NULL,
    plan_id uuid NOT NULL
);
CREATE TABLE care_team_member (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    staff_id uuid NOT NULL
);
CREATE TABLE communication (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    key character varying(160) NOT NULL,
    cause character varying(32) NOT NULL,
    purpose character varying(10) NOT NULL,
    direction character varying(8) NOT NULL,
    channel character varying(8),
    status character varying(10) NOT NULL,
    refusal character varying(24),
    due_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone,
    delivered_at timestamp with time zone,
    settled_at timestamp with time zone,
    attempts integer NOT NULL,
    last_error character varying(200) NOT NULL,
    gateway_message_id character varying(100),
    variables jsonb NOT NULL,
    subject bytea,
    body bytea,
    note bytea,
    appointment_id uuid,
    campaign_id uuid,
    contact_id uuid,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    staff_id uuid,
    leased_until timestamp with time zone,
    rescheduled_to timestamp with time zone,
    reserved_at timestamp with time zone
);
CREATE TABLE contact (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    relationship character varying(16) NOT NULL,
    phone bytea,
    phone_bidx character varying(64),
    is_emergency boolean NOT NULL,
    may_receive_information boolean NOT NULL,
    notes bytea,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE contract (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    number character varying(32) NOT NULL,
    title character varying(200) NOT NULL,
    currency character varying(3) NOT NULL,
    status character varying(10) NOT NULL,
    start_on date NOT NULL,
    end_on date NOT NULL,
    current_version integer NOT NULL,
    activated_at timestamp with time zone,
    suspended_at timestamp with time zone,
    ended_at timestamp with time zone,
    status_reason character varying(200),
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    created_by_id uuid,
    department_id uuid,
    guarantor_id uuid,
    institution_id uuid NOT NULL,
    partner_id uuid,
    patient_id uuid NOT NULL,
    renewal_of_id uuid
);
CREATE TABLE contract_item (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    "position" integer NOT NULL,
    code character varying(32) NOT NULL,
    name character varying(100) NOT NULL,
    quantity integer NOT NULL,
    frequency character varying(10) NOT NULL,
    unit_price bigint NOT NULL,
    period_total bigint NOT NULL,
    delivered_by_partner boolean NOT NULL,
    contract_version_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    price_id uuid NOT NULL,
    service_item_id uuid NOT NULL
);
COMMENT ON TABLE contract_item IS 'A catalogue item sold at one price version: ``quantity`` units per billing period.';
CREATE TABLE contract_signature (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    party character varying(12) NOT NULL,
    signer_kind character varying(10) NOT NULL,
    signer_name character varying(100) NOT NULL,
    method character varying(10) NOT NULL,
    signed_at timestamp with time zone NOT NULL,
    document_sha256 character varying(64) NOT NULL,
    contact_id uuid,
    contract_version_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    staff_id uuid,
    witness_id uuid
);
COMMENT ON TABLE contract_signature IS 'One party''s signature of one version, bound to the SHA-256 of the exact document signed.';
CREATE TABLE contract_version (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    number integer NOT NULL,
    status character varying(10) NOT NULL,
    effective_on date NOT NULL,
    end_on date NOT NULL,
    billing_period character varying(10) NOT NULL,
    deposit bigint NOT NULL,
    period_total bigint NOT NULL,
    notice_days integer NOT NULL,
    auto_renew boolean NOT NULL,
    rights_duties text NOT NULL,
    clauses bytea,
    change_summary text,
    document_sha256 character varying(64),
    document_key character varying(64),
    document_size integer,
    sent_at timestamp with time zone,
    signed_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    contract_id uuid NOT NULL,
    created_by_id uuid,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE contract_version IS 'The terms as agreed at one version. Frozen from ``sent`` on (the database enforces it).';
CREATE TABLE delivery_report (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    channel character varying(8) NOT NULL,
    gateway_message_id character varying(100) NOT NULL,
    status character varying(10) NOT NULL,
    reason character varying(60) NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE delivery_report IS 'A gateway''s report that came before its message''s sent record was written.';
CREATE TABLE department (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    institution_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE department_membership (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    department_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    staff_id uuid NOT NULL
);
CREATE TABLE emergency_access (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    reason bytea NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    reviewed_at timestamp with time zone,
    review_outcome character varying(16),
    review_note bytea,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    reviewed_by_id uuid,
    staff_id uuid NOT NULL
);
CREATE TABLE flag (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(16) NOT NULL,
    status character varying(16) NOT NULL,
    detail bytea,
    starts_on date,
    ends_on date,
    updated_at timestamp with time zone NOT NULL,
    author_id uuid,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE follow_up_attempt (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    at timestamp with time zone NOT NULL,
    channel character varying(10) NOT NULL,
    outcome character varying(16) NOT NULL,
    note bytea,
    institution_id uuid NOT NULL,
    staff_id uuid NOT NULL,
    task_id uuid NOT NULL
);
CREATE TABLE follow_up_rule (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    rule_key uuid NOT NULL,
    version integer NOT NULL,
    active boolean NOT NULL,
    name character varying(100) NOT NULL,
    visit_kind character varying(16),
    procedure_code character varying(32),
    offsets_days character varying(1000) NOT NULL,
    assignee character varying(20) NOT NULL,
    skip_closed_days boolean NOT NULL,
    author_id uuid,
    department_id uuid,
    institution_id uuid NOT NULL
);
CREATE TABLE follow_up_task (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    due_on date NOT NULL,
    status character varying(10) NOT NULL,
    reached boolean,
    condition character varying(8),
    needs_help boolean,
    satisfaction smallint,
    notes bytea,
    completed_at timestamp with time zone,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    activity_id uuid,
    completed_by_id uuid,
    department_id uuid,
    institution_id uuid NOT NULL,
    owner_id uuid,
    patient_id uuid NOT NULL,
    rule_id uuid,
    ticket_id uuid,
    visit_id uuid
);
CREATE TABLE idempotency_key (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    actor_kind character varying(16) NOT NULL,
    actor_id uuid NOT NULL,
    key_hash character varying(64) NOT NULL,
    request_hash character varying(64) NOT NULL,
    action character varying(20) NOT NULL,
    resource_type character varying(40) NOT NULL,
    resource_id uuid,
    patient_id uuid,
    request_id character varying(64) NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE idempotency_key IS 'A signed-in caller''s Idempotency-Key, held for a day with the write it came with.';
CREATE TABLE improvement_item (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    problem character varying(500) NOT NULL,
    measure character varying(1000) NOT NULL,
    deadline date NOT NULL,
    status character varying(16) NOT NULL,
    source character varying(16) NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    created_by_id uuid,
    department_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    survey_month character varying(7),
    survey_questionnaire_key uuid,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE improvement_item IS 'A service problem on the improvement list: who fixes it, how, by when.';
CREATE TABLE improvement_ticket (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    item_id uuid NOT NULL,
    ticket_id uuid NOT NULL
);
CREATE TABLE institution (
    id uuid NOT NULL,
    name character varying(200) NOT NULL,
    kind character varying(20) NOT NULL,
    time_zone character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    audit_retention_months integer DEFAULT 72 NOT NULL,
    totp_required boolean DEFAULT false NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE institution_key (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    version integer NOT NULL,
    wrapped_key bytea NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE institution_key IS 'An institution data key, wrapped by the master key. Rotation adds a version.';
CREATE TABLE message_gateway (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    channel character varying(8) NOT NULL,
    url character varying(500) NOT NULL,
    secret bytea NOT NULL,
    timeout_ms integer NOT NULL,
    active boolean NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE message_gateway IS 'An HTTP gateway for one channel: bodies signed with HMAC-SHA256 under ``secret`` (sealed).';
CREATE TABLE message_template (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    cause character varying(32) NOT NULL,
    channel character varying(8) NOT NULL,
    language character varying(8) NOT NULL,
    subject character varying(200) NOT NULL,
    body text NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL
);
CREATE TABLE messaging_settings (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    reminder_hours_before integer NOT NULL,
    quiet_start character varying(5) NOT NULL,
    quiet_end character varying(5) NOT NULL,
    non_care_cap integer NOT NULL,
    non_care_cap_days integer NOT NULL,
    portal_change_min_hours integer NOT NULL,
    portal_horizon_days integer NOT NULL,
    institution_phone character varying(32) NOT NULL,
    email_from character varying(254) NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE messaging_settings IS 'One row per institution (an institution without one uses the defaults below).';
CREATE TABLE notification (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    key character varying(120) NOT NULL,
    kind character varying(32) NOT NULL,
    due_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    attempts integer NOT NULL,
    last_error character varying(200) NOT NULL,
    institution_id uuid NOT NULL,
    recipient_id uuid,
    ticket_id uuid,
    contract_id uuid
);
COMMENT ON TABLE notification IS 'The escalation outbox: written with the change that schedules it, delivered at least once.';
CREATE TABLE partner (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    is_active boolean NOT NULL,
    institution_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE partner IS 'A home-care company, lab or rehab centre the institution shares data with.';
CREATE TABLE partner_client (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    secret_hash character varying(64) NOT NULL,
    scopes character varying(1000) NOT NULL,
    rate_limit_per_minute integer NOT NULL,
    documents_only boolean NOT NULL,
    revoked_at timestamp with time zone,
    institution_id uuid NOT NULL,
    partner_id uuid NOT NULL
);
COMMENT ON TABLE partner_client IS 'One API client of a partner: a secret (only its keyed hash), the most its tokens may carry,';
CREATE TABLE partner_consent (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    granted boolean NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    partner_id uuid NOT NULL,
    patient_id uuid NOT NULL
);
CREATE TABLE partner_document (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    sha256 character varying(64) NOT NULL,
    client_id uuid NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE partner_document IS 'An operation document a restricted client may send, by the SHA-256 of its text.';
CREATE TABLE partner_grant (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    purpose character varying(200) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    created_by_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    partner_id uuid NOT NULL,
    patient_id uuid NOT NULL
);
COMMENT ON TABLE partner_grant IS 'Staff let a partner reach one patient, for a purpose, until a time.';
CREATE TABLE partner_token (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    token_hash character varying(64) NOT NULL,
    scopes character varying(1000) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    client_id uuid NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE partner_token IS 'A short-lived access token (at most an hour): its keyed hash and the scopes granted.';
CREATE TABLE partner_usage (
    id bigint NOT NULL,
    institution_id uuid NOT NULL,
    client_id uuid NOT NULL,
    window_start timestamp with time zone NOT NULL,
    requests integer NOT NULL,
    throttled integer NOT NULL
);
COMMENT ON TABLE partner_usage IS 'Requests per client and minute: the rate limit''s counter, and the partner''s usage report.';
CREATE SEQUENCE partner_usage_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE partner_usage_id_seq OWNED BY partner_usage.id;
CREATE TABLE password_reset (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    code_hash character varying(64) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    created_by_id uuid,
    institution_id uuid NOT NULL,
    patient_account_id uuid,
    staff_id uuid
);
COMMENT ON TABLE password_reset IS 'Single use and short-lived, for exactly one of a staff account or a patient account.';
CREATE TABLE patient (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    full_name character varying(100) NOT NULL,
    sex character varying(10) NOT NULL,
    birth_date date,
    occupation character varying(100),
    national_id_type character varying(32),
    national_id bytea,
    national_id_bidx character varying(64),
    address bytea,
    phone bytea,
    phone_bidx character varying(64),
    alt_phone bytea,
    alt_phone_bidx character varying(64),
    email character varying(254),
    preferred_channel character varying(10),
    preferred_language character varying(16) NOT NULL,
    contact_consent boolean NOT NULL,
    contact_channels character varying(1000) NOT NULL,
    medical_history bytea,
    diagnoses bytea,
    allergies bytea,
    current_medication bytea,
    diet_preferences character varying(200),
    activity_preferences character varying(200),
    special_needs bytea,
    segments character varying(1000) NOT NULL,
    tags character varying(1000) NOT NULL,
    status character varying(10) NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    department_id uuid,
    institution_id uuid NOT NULL,
    contact_purposes character varying(1000) DEFAULT '|care|'::character varying NOT NULL,
    alt_phone_last4_bidx character varying(64),
    merged_at timestamp with time zone,
    merged_into_id uuid,
    name_search character varying(400) DEFAULT ''::character varying NOT NULL,
    phone_last4_bidx character varying(64),
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE patient_account (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    email character varying(254) NOT NULL,
    password_hash character varying(200) NOT NULL,
    is_active boolean NOT NULL,
    failed_logins integer NOT NULL,
    locked_until timestamp with time zone,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL
);
COMMENT ON TABLE patient_account IS 'Signs in like staff (argon2id, lockout) and reaches exactly one file.';
CREATE TABLE patient_invitation (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    code_hash character varying(64) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    created_by_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL
);
COMMENT ON TABLE patient_invitation IS 'A one-time code staff hand a patient to open their account: only its keyed hash is kept.';
CREATE TABLE patient_session (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    token_hash character varying(64) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    account_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    used_after_end_at timestamp with time zone
);
CREATE TABLE questionnaire (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    key uuid NOT NULL,
    version integer NOT NULL,
    status character varying(10) NOT NULL,
    title jsonb NOT NULL,
    purpose jsonb NOT NULL,
    respondent character varying(10) NOT NULL,
    subject character varying(12) NOT NULL,
    anonymous boolean NOT NULL,
    items jsonb NOT NULL,
    scoring jsonb NOT NULL,
    revision integer NOT NULL,
    template character varying(32),
    updated_at timestamp with time zone NOT NULL,
    author_id uuid,
    institution_id uuid NOT NULL
);
CREATE TABLE questionnaire_response (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    source character varying(8) NOT NULL,
    month character varying(7) NOT NULL,
    score double precision,
    satisfied boolean,
    nps smallint,
    csat smallint,
    low boolean NOT NULL,
    clinician_id uuid,
    department_id uuid,
    entered_by_id uuid,
    follow_up_ticket_id uuid,
    institution_id uuid NOT NULL,
    invitation_id uuid,
    patient_id uuid,
    questionnaire_id uuid NOT NULL,
    ticket_id uuid,
    visit_id uuid
);
CREATE TABLE response_answer (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    month character varying(7) NOT NULL,
    link_id character varying(40) NOT NULL,
    number double precision,
    choice character varying(40),
    text bytea,
    department_id uuid,
    institution_id uuid NOT NULL,
    questionnaire_id uuid NOT NULL,
    response_id uuid NOT NULL
);
COMMENT ON TABLE response_answer IS 'One item''s answer: a number (Likert, 0-10, CSAT, yes = 1 / no = 0), a choice, or sealed text.';
CREATE TABLE role_assignment (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    role character varying(32) NOT NULL,
    institution_id uuid NOT NULL,
    staff_id uuid NOT NULL
);
CREATE TABLE role_grant (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    role character varying(32) NOT NULL,
    reviewed_at timestamp with time zone,
    review_outcome character varying(16),
    review_note character varying(1000),
    granted_by_id uuid NOT NULL,
    institution_id uuid NOT NULL,
    reviewed_by_id uuid,
    staff_id uuid NOT NULL
);
CREATE TABLE schedule (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    name character varying(100) NOT NULL,
    kind character varying(10) NOT NULL,
    week jsonb NOT NULL,
    slot_minutes integer NOT NULL,
    capacity integer NOT NULL,
    active boolean NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    clinician_id uuid,
    department_id uuid NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE schedule IS '``week`` maps an ISO weekday (\"1\" = Monday) to ``[[\"08:00\", \"12:00\"], ...]`` sessions, local';
CREATE TABLE schedule_exception (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(8) NOT NULL,
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    capacity integer,
    reason character varying(200) NOT NULL,
    cancelled_at timestamp with time zone,
    institution_id uuid NOT NULL,
    schedule_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE schedule_exception IS 'A leave (no slots from ``starts_at`` to ``ends_at``) or an extra session (slots there, with';
CREATE TABLE service_item (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    code character varying(32) NOT NULL,
    name character varying(100) NOT NULL,
    active boolean NOT NULL,
    institution_id uuid NOT NULL,
    description text,
    frequencies character varying(64) DEFAULT 'per_visit'::character varying NOT NULL,
    standard text,
    unit character varying(10) DEFAULT 'visit'::character varying NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE service_item IS 'An entry of the institution''s catalogue of procedures and services (orthodontics, implant...).';
CREATE TABLE service_item_price (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    number integer NOT NULL,
    unit_price bigint NOT NULL,
    currency character varying(3) NOT NULL,
    effective_from date NOT NULL,
    created_by_id uuid,
    institution_id uuid NOT NULL,
    item_id uuid NOT NULL
);
COMMENT ON TABLE service_item_price IS 'One price version of an item: in force from ``effective_from`` until the next version''s date.';
CREATE TABLE session (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    token_hash character varying(64) NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    institution_id uuid NOT NULL,
    staff_id uuid NOT NULL,
    used_after_end_at timestamp with time zone
);
COMMENT ON TABLE session IS 'A bearer token''s server side: only its keyed hash, never the token.';
CREATE TABLE sign_in_throttle (
    id character varying(64) NOT NULL,
    failed_logins integer NOT NULL,
    locked_until timestamp with time zone,
    updated_at timestamp with time zone NOT NULL
);
CREATE TABLE sign_in_window (
    id bigint NOT NULL,
    address character varying(64) NOT NULL,
    window_start timestamp with time zone NOT NULL,
    attempts integer NOT NULL
);
CREATE SEQUENCE sign_in_window_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE sign_in_window_id_seq OWNED BY sign_in_window.id;
CREATE TABLE sla_policy (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    level smallint NOT NULL,
    first_response_minutes integer NOT NULL,
    resolution_minutes integer NOT NULL,
    clock character varying(10) NOT NULL,
    institution_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE sla_policy IS 'First-response and resolution targets of one level, in minutes of its clock.';
CREATE TABLE staff (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    email character varying(254) NOT NULL,
    name character varying(100) NOT NULL,
    password_hash character varying(200) NOT NULL,
    is_active boolean NOT NULL,
    is_demo boolean NOT NULL,
    failed_logins integer NOT NULL,
    locked_until timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    password_changed_at timestamp with time zone,
    totp_enabled_at timestamp with time zone,
    totp_last_step bigint,
    totp_secret bytea,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE survey_invitation (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    cause_key character varying(120) NOT NULL,
    status character varying(10) NOT NULL,
    token_hash character varying(64),
    send_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    answered boolean NOT NULL,
    answered_at timestamp with time zone,
    reminded_at timestamp with time zone,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    clinician_id uuid,
    contact_id uuid,
    department_id uuid,
    follow_up_task_id uuid,
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    questionnaire_id uuid NOT NULL,
    ticket_id uuid,
    trigger_id uuid,
    visit_id uuid
);
CREATE TABLE survey_settings (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    fatigue_days integer NOT NULL,
    satisfaction_target integer NOT NULL,
    min_cell integer NOT NULL,
    link_valid_days integer NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE survey_settings IS 'One row per institution (the defaults when absent).';
CREATE TABLE survey_trigger (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    questionnaire_key uuid NOT NULL,
    event character varying(20) NOT NULL,
    visit_kind character varying(16),
    delay_hours integer NOT NULL,
    reminder_after_days integer,
    active boolean NOT NULL,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    department_id uuid,
    institution_id uuid NOT NULL
);
COMMENT ON TABLE survey_trigger IS 'A rule such as: ask questionnaire Q the day after a finished outpatient visit in department D, and';
CREATE TABLE ticket (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    caller_name bytea,
    caller_phone bytea,
    channel character varying(16) NOT NULL,
    category character varying(16) NOT NULL,
    subcategory character varying(64) NOT NULL,
    level smallint NOT NULL,
    vip boolean NOT NULL,
    subject bytea NOT NULL,
    description bytea,
    status character varying(20) NOT NULL,
    root_cause_category character varying(16),
    root_cause bytea,
    resolution bytea,
    feedback bytea,
    received_at timestamp with time zone NOT NULL,
    first_responded_at timestamp with time zone,
    resolved_at timestamp with time zone,
    closed_at timestamp with time zone,
    paused_at timestamp with time zone,
    response_due_at timestamp with time zone,
    response_at_risk_at timestamp with time zone,
    resolution_due_at timestamp with time zone,
    resolution_at_risk_at timestamp with time zone,
    next_due_at timestamp with time zone,
    next_at_risk_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    assignee_id uuid,
    contact_id uuid,
    department_id uuid,
    institution_id uuid NOT NULL,
    owner_id uuid,
    patient_id uuid,
    opened_by_id uuid,
    opened_by_partner_id uuid,
    opened_by_patient boolean DEFAULT false NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
CREATE TABLE ticket_event (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(20) NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    from_status character varying(20),
    to_status character varying(20),
    internal boolean NOT NULL,
    note bytea,
    actor_id uuid,
    institution_id uuid NOT NULL,
    ticket_id uuid NOT NULL,
    to_department_id uuid,
    to_staff_id uuid
);
COMMENT ON TABLE ticket_event IS 'One entry of a ticket''s timeline: who did what, when, from which status to which.';
CREATE TABLE tortoise_migrations (
    id integer NOT NULL,
    app character varying(255) NOT NULL,
    name character varying(255) NOT NULL,
    applied_at timestamp with time zone NOT NULL
);
CREATE SEQUENCE tortoise_migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE tortoise_migrations_id_seq OWNED BY tortoise_migrations.id;
CREATE TABLE visit (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(16) NOT NULL,
    status character varying(16) NOT NULL,
    planned_at timestamp with time zone NOT NULL,
    arrived_at timestamp with time zone,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    cancelled_at timestamp with time zone,
    revisit_on date,
    reason bytea,
    summary bytea,
    outcome bytea,
    treatment_plan bytea,
    medication_guidance bytea,
    rehabilitation bytea,
    precautions bytea,
    feedback bytea,
    internal_note bytea,
    version integer NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    clinician_id uuid,
    department_id uuid,
    institution_id uuid NOT NULL,
    partner_id uuid,
    patient_id uuid NOT NULL
);
CREATE TABLE visit_code (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    kind character varying(10) NOT NULL,
    system character varying(10) NOT NULL,
    code bytea NOT NULL,
    code_bidx character varying(64) NOT NULL,
    text bytea,
    status character varying(10),
    institution_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    visit_id uuid NOT NULL,
    version integer DEFAULT 1 NOT NULL
);
COMMENT ON TABLE visit_code IS 'A condition (ICD-10) or a procedure (catalogue) recorded on a visit.';
CREATE TABLE visit_staff (
    id uuid NOT NULL,
    created_at timestamp with time zone NOT NULL,
    institution_id uuid NOT NULL,
    staff_id uuid NOT NULL,
    visit_id uuid NOT NULL
);
COMMENT ON TABLE visit_staff IS 'Other staff who took part in a visit.';
ALTER TABLE ONLY audit_patient_index ALTER COLUMN id SET DEFAULT nextval('audit_patient_index_id_seq'::regclass);
ALTER TABLE ONLY partner_usage ALTER COLUMN id SET DEFAULT nextval('partner_usage_id_seq'::regclass);
ALTER TABLE ONLY sign_in_window ALTER COLUMN id SET DEFAULT nextval('sign_in_window_id_seq'::regclass);
ALTER TABLE ONLY tortoise_migrations ALTER COLUMN id SET DEFAULT nextval('tortoise_migrations_id_seq'::regclass);
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_pkey PRIMARY KEY (id);
ALTER TABLE ONLY attachment
    ADD CONSTRAINT attachment_pkey PRIMARY KEY (id);
ALTER TABLE ONLY attachment
    ADD CONSTRAINT attachment_storage_key_key UNIQUE (storage_key);
ALTER TABLE ONLY audit_archive
    ADD CONSTRAINT audit_archive_pkey PRIMARY KEY (id);
ALTER TABLE ONLY audit_chain_head
    ADD CONSTRAINT audit_chain_head_pkey PRIMARY KEY (institution_id);
ALTER TABLE ONLY audit_checkpoint
    ADD CONSTRAINT audit_checkpoint_pkey PRIMARY KEY (id);
ALTER TABLE audit_event
    ADD CONSTRAINT audit_event_occurred_in_years CHECK (((occurred_at >= '2000-01-01 00:00:00+00'::timestamp with time zone) AND (occurred_at < '2200-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;
ALTER TABLE ONLY audit_event
    ADD CONSTRAINT audit_event_pkey PRIMARY KEY (id);
ALTER TABLE ONLY audit_inbox
    ADD CONSTRAINT audit_inbox_pkey PRIMARY KEY (id);
ALTER TABLE ONLY audit_inbox_rejected
    ADD CONSTRAINT audit_inbox_rejected_pkey PRIMARY KEY (id);
ALTER TABLE ONLY audit_patient_index
    ADD CONSTRAINT audit_patient_index_pkey PRIMARY KEY (id);
ALTER TABLE ONLY business_calendar
    ADD CONSTRAINT business_calendar_pkey PRIMARY KEY (id);
ALTER TABLE ONLY campaign
    ADD CONSTRAINT campaign_pkey PRIMARY KEY (id);
ALTER TABLE ONLY care_plan_activity
    ADD CONSTRAINT care_plan_activity_pkey PRIMARY KEY (id);
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_pkey PRIMARY KEY (id);
ALTER TABLE ONLY care_team_member
    ADD CONSTRAINT care_team_member_pkey PRIMARY KEY (id);
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_pkey PRIMARY KEY (id);
ALTER TABLE ONLY contact
    ADD CONSTRAINT contact_pkey PRIMARY KEY (id);
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT contract_item_pkey PRIMARY KEY (id);
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_pkey PRIMARY KEY (id);
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_pkey PRIMARY KEY (id);
ALTER TABLE ONLY contract_version
    ADD CONSTRAINT contract_version_pkey PRIMARY KEY (id);
ALTER TABLE ONLY delivery_report
    ADD CONSTRAINT delivery_report_pkey PRIMARY KEY (id);
ALTER TABLE ONLY department_membership
    ADD CONSTRAINT department_membership_pkey PRIMARY KEY (id);
ALTER TABLE ONLY department
    ADD CONSTRAINT department_pkey PRIMARY KEY (id);
ALTER TABLE ONLY emergency_access
    ADD CONSTRAINT emergency_access_pkey PRIMARY KEY (id);
ALTER TABLE ONLY flag
    ADD CONSTRAINT flag_pkey PRIMARY KEY (id);
ALTER TABLE ONLY follow_up_attempt
    ADD CONSTRAINT follow_up_attempt_pkey PRIMARY KEY (id);
ALTER TABLE ONLY follow_up_rule
    ADD CONSTRAINT follow_up_rule_pkey PRIMARY KEY (id);
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_pkey PRIMARY KEY (id);
ALTER TABLE ONLY idempotency_key
    ADD CONSTRAINT idempotency_key_pkey PRIMARY KEY (id);
ALTER TABLE ONLY improvement_item
    ADD CONSTRAINT improvement_item_pkey PRIMARY KEY (id);
ALTER TABLE ONLY improvement_ticket
    ADD CONSTRAINT improvement_ticket_pkey PRIMARY KEY (id);
ALTER TABLE ONLY institution_key
    ADD CONSTRAINT institution_key_pkey PRIMARY KEY (id);
ALTER TABLE ONLY institution
    ADD CONSTRAINT institution_pkey PRIMARY KEY (id);
ALTER TABLE ONLY message_gateway
    ADD CONSTRAINT message_gateway_pkey PRIMARY KEY (id);
ALTER TABLE ONLY message_template
    ADD CONSTRAINT message_template_pkey PRIMARY KEY (id);
ALTER TABLE ONLY messaging_settings
    ADD CONSTRAINT messaging_settings_pkey PRIMARY KEY (id);
ALTER TABLE ONLY notification
    ADD CONSTRAINT notification_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_client
    ADD CONSTRAINT partner_client_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_client
    ADD CONSTRAINT partner_client_secret_hash_key UNIQUE (secret_hash);
ALTER TABLE ONLY partner_consent
    ADD CONSTRAINT partner_consent_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_document
    ADD CONSTRAINT partner_document_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_grant
    ADD CONSTRAINT partner_grant_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner
    ADD CONSTRAINT partner_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_token
    ADD CONSTRAINT partner_token_pkey PRIMARY KEY (id);
ALTER TABLE ONLY partner_token
    ADD CONSTRAINT partner_token_token_hash_key UNIQUE (token_hash);
ALTER TABLE ONLY partner_usage
    ADD CONSTRAINT partner_usage_pkey PRIMARY KEY (id);
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_code_hash_key UNIQUE (code_hash);
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_pkey PRIMARY KEY (id);
ALTER TABLE ONLY patient_account
    ADD CONSTRAINT patient_account_email_key UNIQUE (email);
ALTER TABLE ONLY patient_account
    ADD CONSTRAINT patient_account_patient_id_key UNIQUE (patient_id);
ALTER TABLE ONLY patient_account
    ADD CONSTRAINT patient_account_pkey PRIMARY KEY (id);
ALTER TABLE ONLY patient_invitation
    ADD CONSTRAINT patient_invitation_code_hash_key UNIQUE (code_hash);
ALTER TABLE ONLY patient_invitation
    ADD CONSTRAINT patient_invitation_pkey PRIMARY KEY (id);
ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_pkey PRIMARY KEY (id);
ALTER TABLE ONLY patient_session
    ADD CONSTRAINT patient_session_pkey PRIMARY KEY (id);
ALTER TABLE ONLY patient_session
    ADD CONSTRAINT patient_session_token_hash_key UNIQUE (token_hash);
ALTER TABLE ONLY questionnaire
    ADD CONSTRAINT questionnaire_pkey PRIMARY KEY (id);
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_pkey PRIMARY KEY (id);
ALTER TABLE ONLY response_answer
    ADD CONSTRAINT response_answer_pkey PRIMARY KEY (id);
ALTER TABLE ONLY role_assignment
    ADD CONSTRAINT role_assignment_pkey PRIMARY KEY (id);
ALTER TABLE ONLY role_grant
    ADD CONSTRAINT role_grant_pkey PRIMARY KEY (id);
ALTER TABLE ONLY schedule_exception
    ADD CONSTRAINT schedule_exception_pkey PRIMARY KEY (id);
ALTER TABLE ONLY schedule
    ADD CONSTRAINT schedule_pkey PRIMARY KEY (id);
ALTER TABLE ONLY service_item
    ADD CONSTRAINT service_item_pkey PRIMARY KEY (id);
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT service_item_price_pkey PRIMARY KEY (id);
ALTER TABLE ONLY session
    ADD CONSTRAINT session_pkey PRIMARY KEY (id);
ALTER TABLE ONLY session
    ADD CONSTRAINT session_token_hash_key UNIQUE (token_hash);
ALTER TABLE ONLY sign_in_throttle
    ADD CONSTRAINT sign_in_throttle_pkey PRIMARY KEY (id);
ALTER TABLE ONLY sign_in_window
    ADD CONSTRAINT sign_in_window_pkey PRIMARY KEY (id);
ALTER TABLE ONLY sla_policy
    ADD CONSTRAINT sla_policy_pkey PRIMARY KEY (id);
ALTER TABLE ONLY staff
    ADD CONSTRAINT staff_email_key UNIQUE (email);
ALTER TABLE ONLY staff
    ADD CONSTRAINT staff_pkey PRIMARY KEY (id);
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_pkey PRIMARY KEY (id);
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_token_hash_key UNIQUE (token_hash);
ALTER TABLE ONLY survey_settings
    ADD CONSTRAINT survey_settings_pkey PRIMARY KEY (id);
ALTER TABLE ONLY survey_trigger
    ADD CONSTRAINT survey_trigger_pkey PRIMARY KEY (id);
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_pkey PRIMARY KEY (id);
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_pkey PRIMARY KEY (id);
ALTER TABLE ONLY tortoise_migrations
    ADD CONSTRAINT tortoise_migrations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY appointment
    ADD CONSTRAINT uid_appointment_schedul_3c1360 UNIQUE (schedule_id, slot_start, seat);
ALTER TABLE ONLY audit_archive
    ADD CONSTRAINT uid_audit_archi_institu_46558b UNIQUE (institution_id, up_to_seq);
ALTER TABLE ONLY audit_checkpoint
    ADD CONSTRAINT uid_audit_check_institu_b5472f UNIQUE (institution_id, last_seq);
ALTER TABLE ONLY audit_event
    ADD CONSTRAINT uid_audit_event_institu_99bfaf UNIQUE (institution_id, seq);
ALTER TABLE ONLY audit_patient_index
    ADD CONSTRAINT uid_audit_patie_institu_7c4599 UNIQUE (institution_id, seq, patient_id);
ALTER TABLE ONLY business_calendar
    ADD CONSTRAINT uid_business_ca_institu_ec612a UNIQUE (institution_id);
ALTER TABLE ONLY care_team_member
    ADD CONSTRAINT uid_care_team_m_patient_82799b UNIQUE (patient_id, staff_id);
ALTER TABLE ONLY communication
    ADD CONSTRAINT uid_communicati_institu_f3136e UNIQUE (institution_id, key);
ALTER TABLE ONLY contract
    ADD CONSTRAINT uid_contract_institu_6a6763 UNIQUE (institution_id, number);
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT uid_contract_it_contrac_541d5f UNIQUE (contract_version_id, "position");
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT uid_contract_si_contrac_0541d0 UNIQUE (contract_version_id, party);
ALTER TABLE ONLY contract_version
    ADD CONSTRAINT uid_contract_ve_contrac_f6f7e7 UNIQUE (contract_id, number);
ALTER TABLE ONLY delivery_report
    ADD CONSTRAINT uid_delivery_re_institu_9feaee UNIQUE (institution_id, channel, gateway_message_id);
ALTER TABLE ONLY department_membership
    ADD CONSTRAINT uid_department__staff_i_4f113c UNIQUE (staff_id, department_id);
ALTER TABLE ONLY department
    ADD CONSTRAINT uid_department_institu_9830fa UNIQUE (institution_id, name);
ALTER TABLE ONLY follow_up_rule
    ADD CONSTRAINT uid_follow_up_r_institu_7a6a9b UNIQUE (institution_id, rule_key, version);
ALTER TABLE ONLY idempotency_key
    ADD CONSTRAINT uid_idempotency_institu_07f9f8 UNIQUE (institution_id, actor_kind, actor_id, key_hash);
ALTER TABLE ONLY improvement_ticket
    ADD CONSTRAINT uid_improvement_item_id_5e06bf UNIQUE (item_id, ticket_id);
ALTER TABLE ONLY institution_key
    ADD CONSTRAINT uid_institution_institu_40b92d UNIQUE (institution_id, version);
ALTER TABLE ONLY message_gateway
    ADD CONSTRAINT uid_message_gat_institu_b00c35 UNIQUE (institution_id, channel);
ALTER TABLE ONLY message_template
    ADD CONSTRAINT uid_message_tem_institu_1a5433 UNIQUE (institution_id, cause, channel, language);
ALTER TABLE ONLY messaging_settings
    ADD CONSTRAINT uid_messaging_s_institu_7d0597 UNIQUE (institution_id);
ALTER TABLE ONLY notification
    ADD CONSTRAINT uid_notificatio_institu_310f70 UNIQUE (institution_id, key);
ALTER TABLE ONLY partner_consent
    ADD CONSTRAINT uid_partner_con_patient_dce0e1 UNIQUE (patient_id, partner_id);
ALTER TABLE ONLY partner_document
    ADD CONSTRAINT uid_partner_doc_client__852f85 UNIQUE (client_id, sha256);
ALTER TABLE ONLY partner
    ADD CONSTRAINT uid_partner_institu_5489ed UNIQUE (institution_id, name);
ALTER TABLE ONLY partner_usage
    ADD CONSTRAINT uid_partner_usa_client__aafc58 UNIQUE (client_id, window_start);
ALTER TABLE ONLY questionnaire
    ADD CONSTRAINT uid_questionnai_institu_69bdbe UNIQUE (institution_id, key, version);
ALTER TABLE ONLY role_assignment
    ADD CONSTRAINT uid_role_assign_staff_i_3fa3a1 UNIQUE (staff_id, role);
ALTER TABLE ONLY service_item
    ADD CONSTRAINT uid_service_ite_institu_4c45d3 UNIQUE (institution_id, code);
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT uid_service_ite_item_id_545e7a UNIQUE (item_id, effective_from);
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT uid_service_ite_item_id_a4889e UNIQUE (item_id, number);
ALTER TABLE ONLY sign_in_window
    ADD CONSTRAINT uid_sign_in_win_address_e5d35b UNIQUE (address, window_start);
ALTER TABLE ONLY sla_policy
    ADD CONSTRAINT uid_sla_policy_institu_7dde00 UNIQUE (institution_id, level);
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT uid_survey_invi_institu_dfcee7 UNIQUE (institution_id, cause_key);
ALTER TABLE ONLY survey_settings
    ADD CONSTRAINT uid_survey_sett_institu_90db92 UNIQUE (institution_id);
ALTER TABLE ONLY tortoise_migrations
    ADD CONSTRAINT uid_tortoise_mi_app_3803a5 UNIQUE (app, name);
ALTER TABLE ONLY visit_staff
    ADD CONSTRAINT uid_visit_staff_visit_i_e098f6 UNIQUE (visit_id, staff_id);
ALTER TABLE ONLY visit_code
    ADD CONSTRAINT visit_code_pkey PRIMARY KEY (id);
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_pkey PRIMARY KEY (id);
ALTER TABLE ONLY visit_staff
    ADD CONSTRAINT visit_staff_pkey PRIMARY KEY (id);
CREATE INDEX audit_event_policy ON audit_event USING btree (institution_id, seq) WHERE ((resource_type)::text = 'policy'::text);
CREATE INDEX audit_inbox_chain ON audit_inbox USING btree (institution_id, id);
CREATE INDEX audit_inbox_rejected_chain ON audit_inbox_rejected USING btree (institution_id, id);
CREATE INDEX audit_patient_index_disclosures ON audit_patient_index USING btree (institution_id, id) WHERE (((actor_kind)::text = 'partner'::text) AND ((action)::text = 'read'::text) AND ((outcome)::text = 'allowed'::text));
CREATE INDEX idx_appointment_institu_9567f0 ON appointment USING btree (institution_id, schedule_id, slot_start);
CREATE INDEX idx_appointment_institu_a06e3a ON appointment USING btree (institution_id, patient_id, slot_start);
CREATE INDEX idx_appointment_institu_dc403e ON appointment USING btree (institution_id, status, slot_end);
CREATE INDEX idx_audit_event_institu_80b80a ON audit_event USING btree (institution_id, occurred_at);
CREATE INDEX idx_audit_event_institu_979f68 ON audit_event USING btree (institution_id, actor_kind, seq);
CREATE INDEX idx_audit_event_institu_98ab2e ON audit_event USING btree (institution_id, actor_id);
CREATE INDEX idx_audit_patie_institu_67f456 ON audit_patient_index USING btree (institution_id, occurred_at);
CREATE INDEX idx_audit_patie_institu_fda3a7 ON audit_patient_index USING btree (institution_id, patient_id, seq);
CREATE INDEX idx_care_plan_a_institu_0429cc ON care_plan_activity USING btree (institution_id, plan_id);
CREATE INDEX idx_care_plan_institu_42f8f8 ON care_plan USING btree (institution_id, patient_id, status);
CREATE INDEX idx_care_team_m_institu_4e4828 ON care_team_member USING btree (institution_id, staff_id, patient_id);
CREATE INDEX idx_care_team_m_institu_fb366e ON care_team_member USING btree (institution_id, patient_id);
CREATE INDEX idx_communicati_gateway_2bbb99 ON communication USING btree (gateway_message_id);
CREATE INDEX idx_communicati_institu_b804eb ON communication USING btree (institution_id, campaign_id, status);
CREATE INDEX idx_communicati_institu_d690e3 ON communication USING btree (institution_id, patient_id, due_at);
CREATE INDEX idx_communicati_status_776a31 ON communication USING btree (status, due_at);
CREATE INDEX idx_contact_institu_cac57f ON contact USING btree (institution_id, patient_id);
CREATE INDEX idx_contact_phone_b_721791 ON contact USING btree (phone_bidx);
CREATE INDEX idx_contract_institu_7cacec ON contract USING btree (institution_id, patient_id, start_on);
CREATE INDEX idx_contract_institu_a1b8be ON contract USING btree (institution_id, status, end_on);
CREATE INDEX idx_emergency_a_institu_dbc878 ON emergency_access USING btree (institution_id, reviewed_at);
CREATE INDEX idx_emergency_a_institu_dddbd5 ON emergency_access USING btree (institution_id, staff_id, expires_at);
CREATE INDEX idx_flag_institu_16e1bc ON flag USING btree (institution_id, patient_id, status);
CREATE INDEX idx_follow_up_a_institu_6545ca ON follow_up_attempt USING btree (institution_id, task_id);
CREATE INDEX idx_follow_up_r_institu_1d1475 ON follow_up_rule USING btree (institution_id, active);
CREATE INDEX idx_follow_up_t_institu_28d549 ON follow_up_task USING btree (institution_id, owner_id, status, due_on);
CREATE INDEX idx_follow_up_t_institu_651c4a ON follow_up_task USING btree (institution_id, department_id, status, due_on);
CREATE INDEX idx_follow_up_t_institu_945a9b ON follow_up_task USING btree (institution_id, patient_id, status);
CREATE INDEX idx_idempotency_created_98dcfd ON idempotency_key USING btree (created_at);
CREATE INDEX idx_improvement_institu_c66bd8 ON improvement_item USING btree (institution_id, status, deadline);
CREATE INDEX idx_notificatio_sent_at_555704 ON notification USING btree (sent_at, due_at);
CREATE INDEX idx_partner_gra_institu_137c8a ON partner_grant USING btree (institution_id, partner_id, patient_id);
CREATE INDEX idx_partner_gra_institu_86bdf4 ON partner_grant USING btree (institution_id, patient_id);
CREATE INDEX idx_patient_alt_pho_66167f ON patient USING btree (alt_phone_bidx);
CREATE INDEX idx_patient_institu_10f5bb ON patient USING btree (institution_id, department_id);
CREATE INDEX idx_patient_institu_741f83 ON patient USING btree (institution_id, alt_phone_last4_bidx);
CREATE INDEX idx_patient_institu_e809c8 ON patient USING btree (institution_id, phone_last4_bidx);
CREATE INDEX idx_patient_institu_f24542 ON patient USING btree (institution_id, full_name);
CREATE INDEX idx_patient_nationa_6f6151 ON patient USING btree (national_id_bidx);
CREATE INDEX idx_patient_phone_b_48296f ON patient USING btree (phone_bidx);
CREATE INDEX idx_patient_status_8515e2 ON patient USING btree (status);
CREATE INDEX idx_questionnai_institu_0e4ac2 ON questionnaire_response USING btree (institution_id, id);
CREATE INDEX idx_questionnai_institu_6b381e ON questionnaire_response USING btree (institution_id, questionnaire_id, department_id, month);
CREATE INDEX idx_questionnai_institu_a3c1ef ON questionnaire_response USING btree (institution_id, patient_id);
CREATE INDEX idx_questionnai_institu_b48c7b ON questionnaire USING btree (institution_id, status);
CREATE INDEX idx_response_an_institu_13a75b ON response_answer USING btree (institution_id, questionnaire_id, department_id, month, link_id, number, choice);
CREATE INDEX idx_response_an_institu_aa011a ON response_answer USING btree (institution_id, response_id);
CREATE INDEX idx_role_grant_institu_3ccf17 ON role_grant USING btree (institution_id, reviewed_at);
CREATE INDEX idx_schedule_ex_institu_89d8e6 ON schedule_exception USING btree (institution_id, schedule_id, starts_at);
CREATE INDEX idx_schedule_institu_3d092f ON schedule USING btree (institution_id, department_id, active);
CREATE INDEX idx_service_ite_institu_4263b4 ON service_item_price USING btree (institution_id, item_id, effective_from);
CREATE INDEX idx_survey_invi_institu_591127 ON survey_invitation USING btree (institution_id, questionnaire_id, status);
CREATE INDEX idx_survey_invi_institu_e68f3a ON survey_invitation USING btree (institution_id, patient_id, created_at);
CREATE INDEX idx_survey_invi_status_a1265b ON survey_invitation USING btree (status, send_at);
CREATE INDEX idx_survey_trig_institu_2f87a6 ON survey_trigger USING btree (institution_id, event, active);
CREATE INDEX idx_ticket_even_ticket__34ef48 ON ticket_event USING btree (ticket_id, occurred_at);
CREATE INDEX idx_ticket_institu_6d735d ON ticket USING btree (institution_id, opened_by_partner_id, id);
CREATE INDEX idx_ticket_institu_7463bd ON ticket USING btree (institution_id, patient_id);
CREATE INDEX idx_ticket_institu_7fde70 ON ticket USING btree (institution_id, id);
CREATE INDEX idx_ticket_institu_86afd4 ON ticket USING btree (institution_id, department_id, status);
CREATE INDEX idx_ticket_institu_afbf77 ON ticket USING btree (institution_id, updated_at, id);
CREATE INDEX idx_ticket_institu_e0a7d0 ON ticket USING btree (institution_id, opened_by_id, id);
CREATE INDEX idx_ticket_institu_e190db ON ticket USING btree (institution_id, next_due_at);
CREATE INDEX idx_ticket_institu_f6e1d8 ON ticket USING btree (institution_id, created_at, id);
CREATE INDEX idx_visit_code_institu_43e9d5 ON visit_code USING btree (institution_id, visit_id);
CREATE INDEX idx_visit_code_institu_e52a3d ON visit_code USING btree (institution_id, code_bidx, status);
CREATE INDEX idx_visit_institu_9f97a6 ON visit USING btree (institution_id, department_id, status);
CREATE INDEX idx_visit_institu_c59afc ON visit USING btree (institution_id, status, planned_at);
CREATE INDEX idx_visit_institu_e86ad4 ON visit USING btree (institution_id, patient_id, planned_at);
CREATE TRIGGER audit_archive_no_truncate BEFORE TRUNCATE ON audit_archive FOR EACH STATEMENT EXECUTE FUNCTION audit_archive_refuse_change();
CREATE TRIGGER audit_archive_no_update_delete BEFORE DELETE OR UPDATE ON audit_archive FOR EACH ROW EXECUTE FUNCTION audit_archive_refuse_change();
CREATE TRIGGER audit_chain_head_forward BEFORE DELETE OR UPDATE ON audit_chain_head FOR EACH ROW EXECUTE FUNCTION audit_chain_head_guard();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_guard();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoint_refuse_change();
CREATE TRIGGER audit_checkpoint_no_update_delete BEFORE DELETE OR UPDATE ON audit_checkpoint FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_refuse_change();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_change();
CREATE TRIGGER audit_event_no_update_delete BEFORE DELETE OR UPDATE ON audit_event FOR EACH ROW EXECUTE FUNCTION audit_event_guard();
CREATE TRIGGER audit_inbox_no_truncate BEFORE TRUNCATE ON audit_inbox FOR EACH STATEMENT EXECUTE FUNCTION audit_inbox_guard();
CREATE TRIGGER audit_inbox_no_update_delete BEFORE DELETE OR UPDATE ON audit_inbox FOR EACH ROW EXECUTE FUNCTION audit_inbox_guard();
CREATE TRIGGER audit_inbox_place BEFORE INSERT ON audit_inbox FOR EACH ROW EXECUTE FUNCTION audit_inbox_place();
CREATE TRIGGER audit_inbox_rejected_no_truncate BEFORE TRUNCATE ON audit_inbox_rejected FOR EACH STATEMENT EXECUTE FUNCTION audit_inbox_rejected_guard();
CREATE TRIGGER audit_inbox_rejected_no_update_delete BEFORE INSERT OR DELETE OR UPDATE ON audit_inbox_rejected FOR EACH ROW EXECUTE FUNCTION audit_inbox_rejected_guard();
CREATE TRIGGER audit_patient_index_no_truncate BEFORE TRUNCATE ON audit_patient_index FOR EACH STATEMENT EXECUTE FUNCTION audit_patient_index_refuse();
CREATE TRIGGER audit_patient_index_no_update_delete BEFORE DELETE OR UPDATE ON audit_patient_index FOR EACH ROW EXECUTE FUNCTION audit_patient_index_guard();
CREATE TRIGGER careloop_principals_department_membership AFTER INSERT OR DELETE OR UPDATE ON department_membership FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_department_membership_truncate AFTER TRUNCATE ON department_membership FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_institution AFTER UPDATE ON institution FOR EACH ROW WHEN (((old.time_zone)::text IS DISTINCT FROM (new.time_zone)::text)) EXECUTE FUNCTION careloop_institution_zone_changed();
CREATE TRIGGER careloop_principals_institution_delete AFTER DELETE ON institution FOR EACH ROW EXECUTE FUNCTION careloop_institution_zone_changed();
CREATE TRIGGER careloop_principals_institution_truncate AFTER TRUNCATE ON institution FOR EACH STATEMENT EXECUTE FUNCTION careloop_institution_zone_changed();
CREATE TRIGGER careloop_principals_patient_account AFTER UPDATE ON patient_account FOR EACH ROW WHEN (((old.is_active IS DISTINCT FROM new.is_active) OR ((old.email)::text IS DISTINCT FROM (new.email)::text) OR (old.patient_id IS DISTINCT FROM new.patient_id) OR (old.institution_id IS DISTINCT FROM new.institution_id))) EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER careloop_principals_patient_account_delete AFTER DELETE ON patient_account FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER careloop_principals_patient_account_truncate AFTER TRUNCATE ON patient_account FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER careloop_principals_patient_session AFTER UPDATE ON patient_session FOR EACH ROW WHEN (((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR ((old.token_hash)::text IS DISTINCT FROM (new.token_hash)::text) OR (old.account_id IS DISTINCT FROM new.account_id) OR (old.institution_id IS DISTINCT FROM new.institution_id))) EXECUTE FUNCTION careloop_principal_changed('account_id');
CREATE TRIGGER careloop_principals_patient_session_delete AFTER DELETE ON patient_session FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('account_id');
CREATE TRIGGER careloop_principals_patient_session_truncate AFTER TRUNCATE ON patient_session FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('account_id');
CREATE TRIGGER careloop_principals_role_assignment AFTER INSERT OR DELETE OR UPDATE ON role_assignment FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_role_assignment_truncate AFTER TRUNCATE ON role_assignment FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_session AFTER UPDATE ON session FOR EACH ROW WHEN (((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR ((old.token_hash)::text IS DISTINCT FROM (new.token_hash)::text) OR (old.staff_id IS DISTINCT FROM new.staff_id) OR (old.institution_id IS DISTINCT FROM new.institution_id))) EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_session_delete AFTER DELETE ON session FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_session_truncate AFTER TRUNCATE ON session FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('staff_id');
CREATE TRIGGER careloop_principals_staff AFTER UPDATE ON staff FOR EACH ROW WHEN (((old.is_active IS DISTINCT FROM new.is_active) OR ((old.email)::text IS DISTINCT FROM (new.email)::text) OR ((old.name)::text IS DISTINCT FROM (new.name)::text) OR (old.institution_id IS DISTINCT FROM new.institution_id))) EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER careloop_principals_staff_delete AFTER DELETE ON staff FOR EACH ROW EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER careloop_principals_staff_truncate AFTER TRUNCATE ON staff FOR EACH STATEMENT EXECUTE FUNCTION careloop_principal_changed('id');
CREATE TRIGGER contract_item_frozen BEFORE INSERT OR DELETE OR UPDATE ON contract_item FOR EACH ROW EXECUTE FUNCTION contract_item_guard();
CREATE TRIGGER contract_signature_no_update_delete BEFORE DELETE OR UPDATE ON contract_signature FOR EACH ROW EXECUTE FUNCTION contract_signature_refuse_change();
CREATE TRIGGER contract_version_frozen BEFORE DELETE OR UPDATE ON contract_version FOR EACH ROW EXECUTE FUNCTION contract_version_guard();
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_booked_by_id_fkey FOREIGN KEY (booked_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_rescheduled_from_id_fkey FOREIGN KEY (rescheduled_from_id) REFERENCES appointment(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES schedule(id) ON DELETE RESTRICT;
ALTER TABLE ONLY appointment
    ADD CONSTRAINT appointment_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY attachment
    ADD CONSTRAINT attachment_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY attachment
    ADD CONSTRAINT attachment_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY attachment
    ADD CONSTRAINT attachment_uploaded_by_id_fkey FOREIGN KEY (uploaded_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY business_calendar
    ADD CONSTRAINT business_calendar_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY campaign
    ADD CONSTRAINT campaign_approved_by_id_fkey FOREIGN KEY (approved_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY campaign
    ADD CONSTRAINT campaign_author_id_fkey FOREIGN KEY (author_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY campaign
    ADD CONSTRAINT campaign_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan_activity
    ADD CONSTRAINT care_plan_activity_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan_activity
    ADD CONSTRAINT care_plan_activity_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES care_plan(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_author_id_fkey FOREIGN KEY (author_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_plan
    ADD CONSTRAINT care_plan_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_team_member
    ADD CONSTRAINT care_team_member_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_team_member
    ADD CONSTRAINT care_team_member_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY care_team_member
    ADD CONSTRAINT care_team_member_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_appointment_id_fkey FOREIGN KEY (appointment_id) REFERENCES appointment(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES campaign(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contact(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY communication
    ADD CONSTRAINT communication_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contact
    ADD CONSTRAINT contact_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contact
    ADD CONSTRAINT contact_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_guarantor_id_fkey FOREIGN KEY (guarantor_id) REFERENCES contact(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT contract_item_contract_version_id_fkey FOREIGN KEY (contract_version_id) REFERENCES contract_version(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT contract_item_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT contract_item_price_id_fkey FOREIGN KEY (price_id) REFERENCES service_item_price(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_item
    ADD CONSTRAINT contract_item_service_item_id_fkey FOREIGN KEY (service_item_id) REFERENCES service_item(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract
    ADD CONSTRAINT contract_renewal_of_id_fkey FOREIGN KEY (renewal_of_id) REFERENCES contract(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contact(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_contract_version_id_fkey FOREIGN KEY (contract_version_id) REFERENCES contract_version(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_signature
    ADD CONSTRAINT contract_signature_witness_id_fkey FOREIGN KEY (witness_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_version
    ADD CONSTRAINT contract_version_contract_id_fkey FOREIGN KEY (contract_id) REFERENCES contract(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_version
    ADD CONSTRAINT contract_version_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY contract_version
    ADD CONSTRAINT contract_version_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY delivery_report
    ADD CONSTRAINT delivery_report_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY department
    ADD CONSTRAINT department_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY department_membership
    ADD CONSTRAINT department_membership_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY department_membership
    ADD CONSTRAINT department_membership_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY department_membership
    ADD CONSTRAINT department_membership_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY emergency_access
    ADD CONSTRAINT emergency_access_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY emergency_access
    ADD CONSTRAINT emergency_access_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY emergency_access
    ADD CONSTRAINT emergency_access_reviewed_by_id_fkey FOREIGN KEY (reviewed_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY emergency_access
    ADD CONSTRAINT emergency_access_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY flag
    ADD CONSTRAINT flag_author_id_fkey FOREIGN KEY (author_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY flag
    ADD CONSTRAINT flag_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY flag
    ADD CONSTRAINT flag_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_attempt
    ADD CONSTRAINT follow_up_attempt_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_attempt
    ADD CONSTRAINT follow_up_attempt_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_attempt
    ADD CONSTRAINT follow_up_attempt_task_id_fkey FOREIGN KEY (task_id) REFERENCES follow_up_task(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_rule
    ADD CONSTRAINT follow_up_rule_author_id_fkey FOREIGN KEY (author_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_rule
    ADD CONSTRAINT follow_up_rule_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_rule
    ADD CONSTRAINT follow_up_rule_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_activity_id_fkey FOREIGN KEY (activity_id) REFERENCES care_plan_activity(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_completed_by_id_fkey FOREIGN KEY (completed_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_rule_id_fkey FOREIGN KEY (rule_id) REFERENCES follow_up_rule(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY follow_up_task
    ADD CONSTRAINT follow_up_task_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY idempotency_key
    ADD CONSTRAINT idempotency_key_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_item
    ADD CONSTRAINT improvement_item_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_item
    ADD CONSTRAINT improvement_item_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_item
    ADD CONSTRAINT improvement_item_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_ticket
    ADD CONSTRAINT improvement_ticket_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_ticket
    ADD CONSTRAINT improvement_ticket_item_id_fkey FOREIGN KEY (item_id) REFERENCES improvement_item(id) ON DELETE RESTRICT;
ALTER TABLE ONLY improvement_ticket
    ADD CONSTRAINT improvement_ticket_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY institution_key
    ADD CONSTRAINT institution_key_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY message_gateway
    ADD CONSTRAINT message_gateway_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY message_template
    ADD CONSTRAINT message_template_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY messaging_settings
    ADD CONSTRAINT messaging_settings_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY notification
    ADD CONSTRAINT notification_contract_id_fkey FOREIGN KEY (contract_id) REFERENCES contract(id) ON DELETE RESTRICT;
ALTER TABLE ONLY notification
    ADD CONSTRAINT notification_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY notification
    ADD CONSTRAINT notification_recipient_id_fkey FOREIGN KEY (recipient_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY notification
    ADD CONSTRAINT notification_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_client
    ADD CONSTRAINT partner_client_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_client
    ADD CONSTRAINT partner_client_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_consent
    ADD CONSTRAINT partner_consent_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_consent
    ADD CONSTRAINT partner_consent_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_consent
    ADD CONSTRAINT partner_consent_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_document
    ADD CONSTRAINT partner_document_client_id_fkey FOREIGN KEY (client_id) REFERENCES partner_client(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_document
    ADD CONSTRAINT partner_document_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_grant
    ADD CONSTRAINT partner_grant_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_grant
    ADD CONSTRAINT partner_grant_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_grant
    ADD CONSTRAINT partner_grant_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_grant
    ADD CONSTRAINT partner_grant_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner
    ADD CONSTRAINT partner_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_token
    ADD CONSTRAINT partner_token_client_id_fkey FOREIGN KEY (client_id) REFERENCES partner_client(id) ON DELETE RESTRICT;
ALTER TABLE ONLY partner_token
    ADD CONSTRAINT partner_token_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_patient_account_id_fkey FOREIGN KEY (patient_account_id) REFERENCES patient_account(id) ON DELETE RESTRICT;
ALTER TABLE ONLY password_reset
    ADD CONSTRAINT password_reset_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_account
    ADD CONSTRAINT patient_account_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_account
    ADD CONSTRAINT patient_account_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_invitation
    ADD CONSTRAINT patient_invitation_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_invitation
    ADD CONSTRAINT patient_invitation_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_invitation
    ADD CONSTRAINT patient_invitation_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient
    ADD CONSTRAINT patient_merged_into_id_fkey FOREIGN KEY (merged_into_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_session
    ADD CONSTRAINT patient_session_account_id_fkey FOREIGN KEY (account_id) REFERENCES patient_account(id) ON DELETE RESTRICT;
ALTER TABLE ONLY patient_session
    ADD CONSTRAINT patient_session_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire
    ADD CONSTRAINT questionnaire_author_id_fkey FOREIGN KEY (author_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire
    ADD CONSTRAINT questionnaire_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_clinician_id_fkey FOREIGN KEY (clinician_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_entered_by_id_fkey FOREIGN KEY (entered_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_follow_up_ticket_id_fkey FOREIGN KEY (follow_up_ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_invitation_id_fkey FOREIGN KEY (invitation_id) REFERENCES survey_invitation(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_questionnaire_id_fkey FOREIGN KEY (questionnaire_id) REFERENCES questionnaire(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY questionnaire_response
    ADD CONSTRAINT questionnaire_response_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY response_answer
    ADD CONSTRAINT response_answer_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY response_answer
    ADD CONSTRAINT response_answer_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY response_answer
    ADD CONSTRAINT response_answer_questionnaire_id_fkey FOREIGN KEY (questionnaire_id) REFERENCES questionnaire(id) ON DELETE RESTRICT;
ALTER TABLE ONLY response_answer
    ADD CONSTRAINT response_answer_response_id_fkey FOREIGN KEY (response_id) REFERENCES questionnaire_response(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_assignment
    ADD CONSTRAINT role_assignment_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_assignment
    ADD CONSTRAINT role_assignment_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_grant
    ADD CONSTRAINT role_grant_granted_by_id_fkey FOREIGN KEY (granted_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_grant
    ADD CONSTRAINT role_grant_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_grant
    ADD CONSTRAINT role_grant_reviewed_by_id_fkey FOREIGN KEY (reviewed_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY role_grant
    ADD CONSTRAINT role_grant_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY schedule
    ADD CONSTRAINT schedule_clinician_id_fkey FOREIGN KEY (clinician_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY schedule
    ADD CONSTRAINT schedule_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY schedule_exception
    ADD CONSTRAINT schedule_exception_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY schedule_exception
    ADD CONSTRAINT schedule_exception_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES schedule(id) ON DELETE RESTRICT;
ALTER TABLE ONLY schedule
    ADD CONSTRAINT schedule_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY service_item
    ADD CONSTRAINT service_item_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT service_item_price_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT service_item_price_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY service_item_price
    ADD CONSTRAINT service_item_price_item_id_fkey FOREIGN KEY (item_id) REFERENCES service_item(id) ON DELETE RESTRICT;
ALTER TABLE ONLY session
    ADD CONSTRAINT session_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY session
    ADD CONSTRAINT session_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY sla_policy
    ADD CONSTRAINT sla_policy_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY staff
    ADD CONSTRAINT staff_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_clinician_id_fkey FOREIGN KEY (clinician_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contact(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_follow_up_task_id_fkey FOREIGN KEY (follow_up_task_id) REFERENCES follow_up_task(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_questionnaire_id_fkey FOREIGN KEY (questionnaire_id) REFERENCES questionnaire(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES survey_trigger(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_invitation
    ADD CONSTRAINT survey_invitation_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_settings
    ADD CONSTRAINT survey_settings_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_trigger
    ADD CONSTRAINT survey_trigger_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY survey_trigger
    ADD CONSTRAINT survey_trigger_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contact(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_ticket_id_fkey FOREIGN KEY (ticket_id) REFERENCES ticket(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_to_department_id_fkey FOREIGN KEY (to_department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket_event
    ADD CONSTRAINT ticket_event_to_staff_id_fkey FOREIGN KEY (to_staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_opened_by_id_fkey FOREIGN KEY (opened_by_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_opened_by_partner_id_fkey FOREIGN KEY (opened_by_partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY ticket
    ADD CONSTRAINT ticket_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_clinician_id_fkey FOREIGN KEY (clinician_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_code
    ADD CONSTRAINT visit_code_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_code
    ADD CONSTRAINT visit_code_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_code
    ADD CONSTRAINT visit_code_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_department_id_fkey FOREIGN KEY (department_id) REFERENCES department(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES partner(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit
    ADD CONSTRAINT visit_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES patient(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_staff
    ADD CONSTRAINT visit_staff_institution_id_fkey FOREIGN KEY (institution_id) REFERENCES institution(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_staff
    ADD CONSTRAINT visit_staff_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES staff(id) ON DELETE RESTRICT;
ALTER TABLE ONLY visit_staff
    ADD CONSTRAINT visit_staff_visit_id_fkey FOREIGN KEY (visit_id) REFERENCES visit(id) ON DELETE RESTRICT;
INSERT INTO tortoise_migrations VALUES (1, 'careloop', '0001_initial', '2026-12-07 23:42:21.691451+00');
INSERT INTO tortoise_migrations VALUES (2, 'careloop', '0002_audit_append_only', '2026-12-07 23:42:22.152397+00');
INSERT INTO tortoise_migrations VALUES (3, 'careloop', '0003_audit_no_replace', '2026-12-07 23:42:22.184565+00');
INSERT INTO tortoise_migrations VALUES (4, 'careloop', '0004_lookup_indexes', '2026-12-07 23:42:22.33339+00');
INSERT INTO tortoise_migrations VALUES (5, 'careloop', '0005_tickets', '2026-12-07 23:42:23.04052+00');
INSERT INTO tortoise_migrations VALUES (6, 'careloop', '0006_improvement_items', '2026-12-07 23:42:23.192297+00');
INSERT INTO tortoise_migrations VALUES (7, 'careloop', '0007_attachments', '2026-12-07 23:42:23.28827+00');
INSERT INTO tortoise_migrations VALUES (8, 'careloop', '0008_audit_checkpoints', '2026-12-07 23:42:23.364314+00');
INSERT INTO tortoise_migrations VALUES (9, 'careloop', '0009_audit_checkpoint_append_only', '2026-12-07 23:42:23.833311+00');
INSERT INTO tortoise_migrations VALUES (10, 'careloop', '0010_emergency_access', '2026-12-07 23:42:24.000289+00');
INSERT INTO tortoise_migrations VALUES (11, 'careloop', '0011_audit_retention', '2026-12-07 23:42:24.3863+00');
INSERT INTO tortoise_migrations VALUES (12, 'careloop', '0012_partners_and_patients', '2026-12-07 23:42:27.154412+00');
INSERT INTO tortoise_migrations VALUES (13, 'careloop', '0013_audit_partner_index', '2026-12-07 23:42:27.264257+00');
INSERT INTO tortoise_migrations VALUES (14, 'careloop', '0014_audit_head_forward', '2026-12-07 23:42:27.333835+00');
INSERT INTO tortoise_migrations VALUES (15, 'careloop', '0015_role_grant_review', '2026-12-07 23:42:27.828466+00');
INSERT INTO tortoise_migrations VALUES (16, 'careloop', '0016_care_journey', '2026-12-07 23:42:30.276491+00');
INSERT INTO tortoise_migrations VALUES (17, 'careloop', '0017_appointments_and_messages', '2026-12-07 23:42:32.366114+00');
INSERT INTO tortoise_migrations VALUES (18, 'careloop', '0018_surveys', '2026-12-07 23:42:34.676431+00');
INSERT INTO tortoise_migrations VALUES (19, 'careloop', '0019_contracts', '2026-12-07 23:42:39.844477+00');
INSERT INTO tortoise_migrations VALUES (20, 'careloop', '0020_portal', '2026-12-07 23:42:48.892396+00');
INSERT INTO tortoise_migrations VALUES (21, 'careloop', '0021_audit_append', '2026-12-07 23:42:49.280324+00');
INSERT INTO tortoise_migrations VALUES (22, 'careloop', '0022_audit_subjects', '2026-12-07 23:42:49.852337+00');
INSERT INTO tortoise_migrations VALUES (23, 'careloop', '0023_audit_inbox', '2026-12-07 23:42:50.818831+00');
INSERT INTO tortoise_migrations VALUES (24, 'careloop', '0024_principal_notify', '2026-12-07 23:42:50.872255+00');
INSERT INTO tortoise_migrations VALUES (25, 'careloop', '0025_versions_everywhere', '2026-12-07 23:42:52.516462+00');
INSERT INTO tortoise_migrations VALUES (26, 'careloop', '0026_audit_link_once', '2026-12-07 23:42:52.61629+00');
INSERT INTO tortoise_migrations VALUES (27, 'careloop', '0027_audit_inbox_rejected', '2026-12-07 23:42:53.060448+00');
INSERT INTO tortoise_migrations VALUES (28, 'careloop', '0028_audit_inbox_tidy', '2026-12-07 23:42:53.18032+00');
INSERT INTO tortoise_migrations VALUES (29, 'careloop', '0029_principal_time_zone', '2026-12-07 23:42:53.484206+00');
INSERT INTO tortoise_migrations VALUES (30, 'careloop', '0030_audit_link_columns', '2026-12-07 23:42:53.596275+00');
INSERT INTO tortoise_migrations VALUES (31, 'careloop', '0031_audit_seal_idle_inbox', '2026-12-07 23:42:53.948384+00');
INSERT INTO tortoise_migrations VALUES (32, 'careloop', '0032_audit_disclosure_index', '2026-12-07 23:42:54.454418+00');
INSERT INTO tortoise_migrations VALUES (33, 'careloop', '0033_audit_free_length_columns', '2026-12-07 23:42:54.87638+00');
INSERT INTO tortoise_migrations VALUES (34, 'careloop', '0034_sign_in_throttle', '2026-12-07 23:42:54.975132+00');
INSERT INTO tortoise_migrations VALUES (35, 'careloop', '0035_sign_in_window', '2026-12-07 23:42:55.307203+00');
INSERT INTO tortoise_migrations VALUES (36, 'careloop', '0036_communication_lease', '2026-12-07 23:42:55.552428+00');
INSERT INTO tortoise_migrations VALUES (37, 'careloop', '0037_communication_rescheduled', '2026-12-07 23:42:56.072392+00');
INSERT INTO tortoise_migrations VALUES (38, 'careloop', '0038_contacts_on_file', '2026-12-07 23:42:56.29223+00');
INSERT INTO tortoise_migrations VALUES (39, 'careloop', '0039_list_indexes', '2026-12-07 23:42:58.88372+00');
INSERT INTO tortoise_migrations VALUES (40, 'careloop', '0040_audit_policy_index', '2026-12-07 23:42:59.056381+00');
INSERT INTO tortoise_migrations VALUES (41, 'careloop', '0041_communication_reserved', '2026-12-07 23:42:59.640327+00');
INSERT INTO tortoise_migrations VALUES (42, 'careloop', '0045_delivery_report', '2026-12-07 23:43:00.060287+00');
INSERT INTO tortoise_migrations VALUES (43, 'careloop', '0049_session_used_after_end', '2026-12-07 23:43:01.065458+00');
INSERT INTO tortoise_migrations VALUES (44, 'careloop', '0050_campaign_approval', '2026-12-07 23:43:01.743302+00');
INSERT INTO tortoise_migrations VALUES (45, 'careloop', '0051_audit_append_once', '2026-12-07 23:43:02.284443+00');
INSERT INTO tortoise_migrations VALUES (46, 'careloop', '0052_audit_head_missing', '2026-12-07 23:43:02.404331+00');
INSERT INTO tortoise_migrations VALUES (47, 'careloop', '0053_idempotency_key', '2026-12-07 23:43:02.796175+00');
SELECT pg_catalog.setval('tortoise_migrations_id_seq', 47, true);
