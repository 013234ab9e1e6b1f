-- Each enrollment records its pricing group when it is made: the age band reached at the start
-- of the product version's period, the member's sex and whether a pre-existing condition was
-- declared. The experience study then counts exposure from the enrollments alone, through an
-- index that holds every column it groups by, instead of joining a city's members.
ALTER TABLE enrollments ADD COLUMN age_band TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN sex TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN preexisting BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE enrollments e
SET sex = m.sex,
    preexisting = (e.declared_conditions <> '[]'),
    age_band = CASE
        WHEN a.age >= 85 THEN '85+'
        WHEN a.age >= 75 THEN '75-84'
        WHEN a.age >= 65 THEN '65-74'
        WHEN a.age >= 55 THEN '55-64'
        WHEN a.age >= 40 THEN '40-54'
        WHEN a.age >= 18 THEN '18-39'
        ELSE '0-17'
    END
FROM members m, product_versions v,
     LATERAL (SELECT CAST(extract(year FROM age(v.period_start, m.birth_date)) AS INTEGER) AS age) a
WHERE m.id = e.member_id AND v.id = e.product_version_id;
CREATE INDEX enrollments_exposure
    ON enrollments (product_id, age_band, sex, preexisting, coverage_start);
