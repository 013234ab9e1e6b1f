DROP INDEX api_tokens_signup;
ALTER TABLE api_tokens DROP COLUMN signup_hash;
ALTER TABLE api_tokens DROP COLUMN revoked_at;
