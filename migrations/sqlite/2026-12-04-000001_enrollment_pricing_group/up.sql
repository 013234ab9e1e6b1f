-- Each enrollment records its pricing group when it is made: the age band reached at the start
-- of the product version's period, the member's sex and whether a pre-existing condition was
-- declared. The experience study then counts exposure from the enrollments alone, through an
-- index that holds every column it groups by, instead of joining a city's members.
ALTER TABLE enrollments ADD COLUMN age_band TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN sex TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN preexisting BOOLEAN NOT NULL DEFAULT 0;
-- Age in whole years on the period start: the difference of the years, less one when the
-- birthday falls later in the year than the start.
UPDATE enrollments
SET sex = (SELECT m.sex FROM members m WHERE m.id = enrollments.member_id),
    preexisting = (declared_conditions <> '[]'),
    age_band = (
        SELECT CASE
            WHEN a.age >= 85 THEN '85+'
            WHEN a.age >= 75 THEN '75-84'
            WHEN a.age >= 65 THEN '65-74'
            WHEN a.age >= 55 THEN '55-64'
            WHEN a.age >= 40 THEN '40-54'
            WHEN a.age >= 18 THEN '18-39'
            ELSE '0-17'
        END
        FROM (SELECT CAST(strftime('%Y', v.period_start) AS INTEGER)
                     - CAST(strftime('%Y', m.birth_date) AS INTEGER)
                     - (strftime('%m-%d', v.period_start) < strftime('%m-%d', m.birth_date)) AS age
              FROM members m, product_versions v
              WHERE m.id = enrollments.member_id AND v.id = enrollments.product_version_id) a
    );
CREATE INDEX enrollments_exposure
    ON enrollments (product_id, age_band, sex, preexisting, coverage_start);
