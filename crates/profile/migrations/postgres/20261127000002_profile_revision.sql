-- Every write of a profile row adds one, so ingestion can trust the decoded copy it keeps in
-- memory when the revisions match, and two writers cannot overwrite each other unseen.
ALTER TABLE user_profile ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
