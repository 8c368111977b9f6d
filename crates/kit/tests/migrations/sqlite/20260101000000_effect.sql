-- The state a test consumer changes: one row per applied event, with how often it was applied.
CREATE TABLE effect (event_id TEXT PRIMARY KEY, applied INTEGER NOT NULL);
