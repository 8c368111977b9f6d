-- The lifecycle sweep's index keys on the day of the last event instead of its time: every
-- profile write moved last_event_at, so every write rewrote this index's entry; the day moves
-- at most once a day, and a write that leaves the indexed columns alone does not assign them.
ALTER TABLE user_profile ADD COLUMN last_event_day INTEGER NOT NULL DEFAULT 0;
UPDATE user_profile SET last_event_day = last_event_at / 86400000000;
DROP INDEX user_profile_last_event;
CREATE INDEX user_profile_lifecycle_day ON user_profile (lifecycle, last_event_day);
