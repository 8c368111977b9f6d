-- The catalog as recommendation needs it. Deleted items are kept as tombstones, so every
-- replica can catch up on changes since its last look (updated_at).
CREATE TABLE item (
    item_id     TEXT    PRIMARY KEY,
    kind        BIGINT  NOT NULL,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    brand       TEXT    NOT NULL,
    -- tags joined with the unit separator U+001F
    tags        TEXT    NOT NULL,
    price_minor BIGINT,
    currency    TEXT,
    available   BIGINT  NOT NULL,
    stock       BIGINT  NOT NULL,
    -- little-endian f32s; empty when there is no image embedding
    embedding   BYTEA   NOT NULL,
    image_url   TEXT    NOT NULL,
    deleted     BIGINT  NOT NULL DEFAULT 0,
    -- unix microseconds of the last write; readers re-read a few seconds back (see
    -- store::catalog_changes) so writes committed out of stamp order are not missed
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX item_updated_at ON item (updated_at);

-- What users did with items: from the profile service's behaviour events and bulk imports.
CREATE TABLE interaction (
    user_id     TEXT    NOT NULL,
    -- the behaviour event id, or "import:<line>" for imported history
    event_id    TEXT    NOT NULL,
    item_id     TEXT    NOT NULL,
    -- tailor.events.v1.BehaviorType number
    kind        BIGINT  NOT NULL,
    weight      DOUBLE PRECISION NOT NULL,
    -- unix microseconds
    occurred_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX interaction_user_time ON interaction (user_id, occurred_at);

-- Trained model sets; exactly one is active.
CREATE TABLE model_version (
    version       TEXT    PRIMARY KEY,
    created_at    BIGINT  NOT NULL,
    active        BIGINT  NOT NULL,
    -- encoded ModelSet (see domain/models.rs)
    blob          BYTEA   NOT NULL,
    -- JSON object of holdout metrics
    metrics       TEXT    NOT NULL,
    interactions  BIGINT  NOT NULL,
    users         BIGINT  NOT NULL,
    items         BIGINT  NOT NULL,
    train_seconds DOUBLE PRECISION NOT NULL
);

-- What was shown to whom, for experiment analysis and click attribution.
CREATE TABLE exposure (
    recommendation_id TEXT    PRIMARY KEY,
    user_id           TEXT    NOT NULL,
    placement         TEXT    NOT NULL,
    experiment        TEXT    NOT NULL,
    variant           TEXT    NOT NULL,
    model_version     TEXT    NOT NULL,
    -- recommended item ids joined with U+001F, in rank order
    items             TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL
);
CREATE INDEX exposure_user ON exposure (user_id);

-- Regions users are seen in (sent by the gateway), for cold-start popularity per region.
CREATE TABLE user_region (
    user_id TEXT PRIMARY KEY,
    region  TEXT NOT NULL
);

-- Consent decisions for personalization, from the privacy service.
CREATE TABLE user_consent (
    user_id                 TEXT    PRIMARY KEY,
    personalization_allowed BIGINT  NOT NULL,
    version                 BIGINT  NOT NULL
);

-- Users erased since the active model was trained: their learned state must not serve.
CREATE TABLE erased_user (
    user_id   TEXT    PRIMARY KEY,
    erased_at BIGINT  NOT NULL
);

-- Who trains: replicas take a lease so one trains at a time.
CREATE TABLE training_lease (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
