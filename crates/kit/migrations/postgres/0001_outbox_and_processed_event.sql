-- Events written in the same transaction as the state change they describe; the relay
-- publishes them to the bus and deletes them.
CREATE TABLE outbox (
    outbox_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      TEXT   NOT NULL,
    event_id   TEXT   NOT NULL,
    -- encoded tailor.events.v1.EventEnvelope
    envelope   BYTEA  NOT NULL,
    -- unix microseconds
    created_at BIGINT NOT NULL
);

-- Events a consumer group has already applied, so redeliveries have no second effect.
CREATE TABLE processed_event (
    consumer_group TEXT   NOT NULL,
    event_id       TEXT   NOT NULL,
    -- unix microseconds, for pruning
    processed_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX processed_event_processed_at ON processed_event (processed_at);
