-- A token can be revoked (it stops working; the row stays, for the audit trail), and a token
-- issued by a sign-up remembers which sign-up (a hash of the caller and its Idempotency-Key), so
-- that a replayed sign-up can replace the token it issued before instead of adding a second one.
ALTER TABLE api_tokens ADD COLUMN revoked_at TIMESTAMP;
ALTER TABLE api_tokens ADD COLUMN signup_hash TEXT;
CREATE INDEX api_tokens_signup ON api_tokens (signup_hash);
