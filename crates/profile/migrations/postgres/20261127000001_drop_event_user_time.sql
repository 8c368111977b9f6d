-- Every per-user query (export pages, erasure) goes through the primary key (user_id, event_id);
-- this index only cost a random page write per ingested event.
DROP INDEX behavior_event_user_time;
