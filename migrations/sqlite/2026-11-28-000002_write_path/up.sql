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
