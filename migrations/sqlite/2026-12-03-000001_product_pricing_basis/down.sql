ALTER TABLE product_versions DROP COLUMN pricing_scenario_sha256;
