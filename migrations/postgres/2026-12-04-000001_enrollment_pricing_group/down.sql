DROP INDEX enrollments_exposure;
ALTER TABLE enrollments DROP COLUMN preexisting;
ALTER TABLE enrollments DROP COLUMN sex;
ALTER TABLE enrollments DROP COLUMN age_band;
