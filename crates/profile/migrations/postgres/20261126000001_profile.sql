-- Behaviour events as received (after validation), one row per (user, client event id).
CREATE TABLE behavior_event (
    user_id       TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    -- tailor.events.v1.BehaviorType number
    kind          BIGINT  NOT NULL,
    -- unix microseconds, as reported by the client (clamped)
    occurred_at   BIGINT  NOT NULL,
    item_id       TEXT,
    category      TEXT,
    brand         TEXT,
    -- tags joined with the unit separator U+001F
    tags          TEXT,
    query         TEXT,
    quantity      BIGINT  NOT NULL,
    price_minor   BIGINT,
    currency      TEXT,
    discounted    BIGINT  NOT NULL,
    rating        BIGINT,
    review_text   TEXT,
    session_id    TEXT,
    received_at   BIGINT  NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX behavior_event_occurred_at ON behavior_event (occurred_at);
CREATE INDEX behavior_event_user_time ON behavior_event (user_id, occurred_at);

-- One row per known user: derived profile state plus declared attributes and consent.
CREATE TABLE user_profile (
    user_id                 TEXT    PRIMARY KEY,
    -- encoded ProfileState (see crates/profile/src/domain/profile.rs)
    state                   BYTEA   NOT NULL,
    gender                  BIGINT  NOT NULL DEFAULT 0,
    age_band                BIGINT  NOT NULL DEFAULT 0,
    region                  TEXT    NOT NULL DEFAULT '',
    occupation              TEXT    NOT NULL DEFAULT '',
    -- segment computed at the last update, to detect changes: new, active, at_risk, churned
    lifecycle               TEXT    NOT NULL DEFAULT '',
    personalization_allowed BIGINT  NOT NULL DEFAULT 1,
    consent_version         BIGINT  NOT NULL DEFAULT 0,
    -- unix microseconds; 0 until the first event
    first_seen_at           BIGINT  NOT NULL DEFAULT 0,
    last_event_at           BIGINT  NOT NULL DEFAULT 0,
    updated_at              BIGINT  NOT NULL
);
CREATE INDEX user_profile_first_seen ON user_profile (first_seen_at);
CREATE INDEX user_profile_last_event ON user_profile (lifecycle, last_event_at);

-- Typical price per category (running mean of purchase prices in the reporting currency).
CREATE TABLE category_price (
    category        TEXT    PRIMARY KEY,
    purchases       BIGINT  NOT NULL,
    price_sum_minor BIGINT  NOT NULL
);

-- Review sentiment aggregated per item.
CREATE TABLE item_sentiment (
    item_id       TEXT    PRIMARY KEY,
    reviews       BIGINT  NOT NULL,
    polarity_sum  DOUBLE PRECISION NOT NULL,
    positive      BIGINT  NOT NULL,
    negative      BIGINT  NOT NULL,
    rating_sum    BIGINT  NOT NULL
);
