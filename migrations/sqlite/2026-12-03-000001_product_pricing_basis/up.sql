-- The SHA-256 (hex) of the pricing scenario file a product version names (`pricing_scenario`),
-- taken when the version was loaded: the experience study and the renewal read that scenario
-- as their basis and refuse it once the file no longer hashes to this. NULL for a product
-- that names no scenario.
ALTER TABLE product_versions ADD COLUMN pricing_scenario_sha256 TEXT;
