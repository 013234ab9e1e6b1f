DROP INDEX paid_items_authorization;
ALTER TABLE paid_items DROP COLUMN cycle;
ALTER TABLE paid_items DROP COLUMN authorization_id;
DROP TABLE authorization_cancels;
DROP TABLE authorization_followups;
DROP TABLE authorizations;
