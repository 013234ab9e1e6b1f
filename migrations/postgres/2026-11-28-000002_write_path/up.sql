-- Every claim inserts a row into claims, decisions, paid_items and ledger_entries, and each index
-- on them is written with it. These indexes served no query: financial rows are append-only, so
-- the foreign keys they back are never checked from the parent side (no parent is ever deleted
-- or re-keyed). Lookups by claim, member and submitter keep their indexes.
DROP INDEX claims_enrollment;
DROP INDEX claims_product_version;
DROP INDEX decisions_parent;
DROP INDEX decisions_product_version;
DROP INDEX paid_items_decision;
DROP INDEX ledger_entries_decision;
DROP INDEX ledger_entries_reversal;

-- The stored responses, decisions and submissions of a claim are 1 to 8 kB of JSON. Past 2 kB
-- PostgreSQL would compress them and move them to a TOAST table, on every insert; kept inline up
-- to a page they are written once, uncompressed.
ALTER TABLE idempotency_keys SET (toast_tuple_target = 8160);
ALTER TABLE decisions SET (toast_tuple_target = 8160);
ALTER TABLE claims SET (toast_tuple_target = 8160);
ALTER TABLE audit_events SET (toast_tuple_target = 8160);
