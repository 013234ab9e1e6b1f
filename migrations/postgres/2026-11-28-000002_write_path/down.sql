CREATE INDEX claims_enrollment ON claims (enrollment_id);
CREATE INDEX claims_product_version ON claims (product_version_id);
CREATE INDEX decisions_parent ON decisions (parent_decision_id);
CREATE INDEX decisions_product_version ON decisions (product_version_id);
CREATE INDEX paid_items_decision ON paid_items (decision_id);
CREATE INDEX ledger_entries_decision ON ledger_entries (decision_id);
CREATE INDEX ledger_entries_reversal ON ledger_entries (reversal_id);

ALTER TABLE idempotency_keys RESET (toast_tuple_target);
ALTER TABLE decisions RESET (toast_tuple_target);
ALTER TABLE claims RESET (toast_tuple_target);
ALTER TABLE audit_events RESET (toast_tuple_target);
