-- Money is integer fen (0.01 CNY) in BIGINT columns; timestamps are UTC.
-- Financial rows are append-only: corrections are new rows (reversals, appeal decisions).

CREATE TABLE product_versions (
    id BIGSERIAL PRIMARY KEY,
    product_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    body TEXT NOT NULL,
    loaded_by TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    UNIQUE (product_id, version)
);
CREATE INDEX product_versions_period ON product_versions (period_start, period_end);

CREATE TABLE members (
    id BIGSERIAL PRIMARY KEY,
    resident_id_hash TEXT NOT NULL UNIQUE,
    resident_id_masked TEXT NOT NULL,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    birth_date DATE NOT NULL,
    sex TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE enrollments (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    product_id TEXT NOT NULL,
    product_version_id BIGINT NOT NULL REFERENCES product_versions (id),
    insurance_type TEXT NOT NULL,
    declared_conditions TEXT NOT NULL,
    enrolled_on DATE NOT NULL,
    coverage_start DATE NOT NULL,
    waiting_waived BOOLEAN NOT NULL,
    enrolled_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (member_id, product_id)
);
CREATE INDEX enrollments_product_version ON enrollments (product_version_id);

CREATE TABLE claims (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    enrollment_id BIGINT NOT NULL REFERENCES enrollments (id),
    product_version_id BIGINT NOT NULL REFERENCES product_versions (id),
    kind TEXT NOT NULL,
    service_date DATE NOT NULL,
    provider_id TEXT NOT NULL,
    submission TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX claims_member ON claims (member_id, id);
CREATE INDEX claims_enrollment ON claims (enrollment_id);
CREATE INDEX claims_product_version ON claims (product_version_id);
CREATE INDEX claims_submitted_by ON claims (submitted_by, id);

-- One row per decision: sequence 1 is the first decision, later ones are appeals.
CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    claim_id BIGINT NOT NULL REFERENCES claims (id),
    sequence INTEGER NOT NULL,
    parent_decision_id BIGINT REFERENCES decisions (id),
    product_version_id BIGINT NOT NULL REFERENCES product_versions (id),
    status TEXT NOT NULL,
    payable_fen BIGINT NOT NULL,
    body TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (claim_id, sequence)
);
CREATE INDEX decisions_parent ON decisions (parent_decision_id);
CREATE INDEX decisions_product_version ON decisions (product_version_id);

CREATE TABLE reversals (
    id BIGSERIAL PRIMARY KEY,
    claim_id BIGINT NOT NULL UNIQUE REFERENCES claims (id),
    reason TEXT NOT NULL,
    reversed_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Items paid, by fingerprint, for the duplicate rule.
CREATE TABLE paid_items (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    claim_id BIGINT NOT NULL REFERENCES claims (id),
    decision_id BIGINT NOT NULL REFERENCES decisions (id),
    item_index INTEGER NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE INDEX paid_items_member_fingerprint ON paid_items (member_id, fingerprint);
CREATE INDEX paid_items_claim ON paid_items (claim_id);
CREATE INDEX paid_items_decision ON paid_items (decision_id);

-- Benefit accumulators: a balance is the sum of its entries (member x product x benefit).
CREATE TABLE ledger_entries (
    id BIGSERIAL PRIMARY KEY,
    member_id BIGINT NOT NULL REFERENCES members (id),
    product_id TEXT NOT NULL,
    benefit TEXT NOT NULL,
    claim_id BIGINT NOT NULL REFERENCES claims (id),
    decision_id BIGINT REFERENCES decisions (id),
    reversal_id BIGINT REFERENCES reversals (id),
    item_index INTEGER NOT NULL,
    deductible_fen BIGINT NOT NULL,
    paid_fen BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ledger_entries_balance ON ledger_entries (member_id, product_id, benefit);
CREATE INDEX ledger_entries_claim ON ledger_entries (claim_id);
CREATE INDEX ledger_entries_decision ON ledger_entries (decision_id);
CREATE INDEX ledger_entries_reversal ON ledger_entries (reversal_id);

CREATE TABLE idempotency_keys (
    principal TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);

-- Hash-chained audit log: hash = HMAC-SHA-256(key, prev_hash || payload).
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    member_id BIGINT REFERENCES members (id),
    provider_id TEXT,
    label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX api_tokens_member ON api_tokens (member_id);

CREATE TABLE pricing_runs (
    id BIGSERIAL PRIMARY KEY,
    requested_by TEXT NOT NULL,
    scenario_name TEXT NOT NULL,
    scenario_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    result TEXT,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
