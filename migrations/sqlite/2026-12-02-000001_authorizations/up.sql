-- Authorised treatment courses of a specialty drug. A course is decided once, when requested
-- (body: the validated request and the decision, as JSON); what happens to it afterwards is
-- recorded beside it, append-only: efficacy assessments (follow-ups) and at most one cancel.
CREATE TABLE authorizations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id),
    product_id TEXT NOT NULL,
    drug TEXT NOT NULL,
    start_date DATE NOT NULL,
    decided_status TEXT NOT NULL,
    body TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX authorizations_member ON authorizations (member_id);

CREATE TABLE authorization_followups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    authorization_id BIGINT NOT NULL REFERENCES authorizations (id),
    assessed_on DATE NOT NULL,
    response TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX authorization_followups_authorization ON authorization_followups (authorization_id);

CREATE TABLE authorization_cancels (
    authorization_id BIGINT PRIMARY KEY REFERENCES authorizations (id),
    cancelled_on DATE NOT NULL,
    reason TEXT NOT NULL,
    cancelled_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- A paid dispensing uses its cycle of the course it names (NULL outside a course). No REFERENCES
-- here: SQLite cannot drop a column that a foreign key uses, and the down migration drops it; the
-- claim writer only names authorisations it has read.
ALTER TABLE paid_items ADD COLUMN authorization_id BIGINT;
ALTER TABLE paid_items ADD COLUMN cycle INTEGER;
CREATE INDEX paid_items_authorization ON paid_items (authorization_id)
    WHERE authorization_id IS NOT NULL;
