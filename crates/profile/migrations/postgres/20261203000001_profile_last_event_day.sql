-- The lifecycle sweep's index keys on the day of the last event instead of its time: a profile
-- write that moved last_event_at (most do) could not update the row in place (HOT) and added an
-- entry to every index of the table; the day moves at most once a day.
ALTER TABLE user_profile ADD COLUMN last_event_day BIGINT NOT NULL DEFAULT 0;
UPDATE user_profile SET last_event_day = last_event_at / 86400000000;
DROP INDEX user_profile_last_event;
CREATE INDEX user_profile_lifecycle_day ON user_profile (lifecycle, last_event_day);
-- Room on each page for the next version of its rows, which a HOT update needs.
ALTER TABLE user_profile SET (fillfactor = 80);
