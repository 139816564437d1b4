-- Star schema (CONTRACT §3) plus the pipeline's own state.
-- Applied at start-up in one transaction; every statement is idempotent.
-- Money is DECIMAL(18,4); timestamps are TIMESTAMP holding UTC.

CREATE TABLE IF NOT EXISTS dim_user (
    user_id      VARCHAR PRIMARY KEY,
    name         VARCHAR,
    email        VARCHAR,
    country      VARCHAR,            -- ISO 3166-1 alpha-2
    signup_date  DATE,
    is_inferred  BOOLEAN NOT NULL,   -- placeholder made for an order that arrived first
    updated_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_product (
    sku          VARCHAR PRIMARY KEY,
    name         VARCHAR,
    category     VARCHAR,
    list_price   DECIMAL(18, 4),
    is_inferred  BOOLEAN NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- One row per loaded order. Uniqueness of order_id is guaranteed by processed_orders, written
-- in the same transaction; no index here keeps inserts cheap.
CREATE TABLE IF NOT EXISTS dim_order (
    order_id         VARCHAR NOT NULL,
    user_id          VARCHAR,
    amount           DECIMAL(18, 4),
    currency         VARCHAR,
    source           VARCHAR,
    promo            VARCHAR,
    created_at       TIMESTAMP,
    line_count       INTEGER NOT NULL,
    kafka_topic      VARCHAR NOT NULL,
    kafka_partition  INTEGER NOT NULL,
    kafka_offset     BIGINT NOT NULL,
    batch_id         BIGINT NOT NULL
);

-- Grain: one order line; logical key (order_id, line_number), line_number counts from 1.
CREATE TABLE IF NOT EXISTS fact_sales (
    order_id     VARCHAR NOT NULL,
    line_number  INTEGER NOT NULL,
    sku          VARCHAR NOT NULL,
    user_id      VARCHAR,
    quantity     BIGINT NOT NULL,
    unit_price   DECIMAL(18, 4) NOT NULL,
    created_at   TIMESTAMP
);

-- Idempotency state: every loaded order_id with the hash of its canonical JSON content.
-- No primary key: uniqueness holds by construction (one writer, and an order is inserted only
-- after a lookup in the same transaction finds it absent), and an index over millions of ids
-- would make every batch slower as the table grows. key_hash (the low 64 bits of the id's MD5)
-- is what lookups join on.
CREATE TABLE IF NOT EXISTS processed_orders (
    order_id      VARCHAR NOT NULL,
    key_hash      UBIGINT NOT NULL,
    content_hash  BIGINT NOT NULL,
    batch_id      BIGINT NOT NULL
);

-- Every rejected record, kept byte for byte with its reason.
CREATE TABLE IF NOT EXISTS rejected_events (
    topic         VARCHAR NOT NULL,
    "partition"   INTEGER NOT NULL,
    "offset"      BIGINT NOT NULL,
    reason        VARCHAR NOT NULL,
    detail        VARCHAR,
    order_id      VARCHAR,           -- set for conflicting_duplicate
    kafka_key     BLOB,
    payload       BLOB,              -- the raw value; NULL for a tombstone
    payload_text  VARCHAR,           -- the same value as text when it is valid UTF-8
    batch_id      BIGINT NOT NULL,
    PRIMARY KEY (topic, "partition", "offset")
);

-- Identical re-sends: counted, not loaded. With dim_order and rejected_events this accounts for
-- every offset of the topic exactly once.
CREATE TABLE IF NOT EXISTS dropped_duplicates (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    "offset"     BIGINT NOT NULL,
    order_id     VARCHAR NOT NULL,
    batch_id     BIGINT NOT NULL
);

-- The offsets ledger: the next offset to read per partition, committed with the data.
CREATE TABLE IF NOT EXISTS kafka_offsets (
    topic        VARCHAR NOT NULL,
    "partition"  INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    batch_id     BIGINT NOT NULL,
    PRIMARY KEY (topic, "partition")
);

CREATE TABLE IF NOT EXISTS load_batches (
    batch_id     BIGINT PRIMARY KEY,
    committed_at TIMESTAMP NOT NULL,
    records      INTEGER NOT NULL,
    loaded       INTEGER NOT NULL,
    duplicates   INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    fact_rows    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS pipeline_meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TIMESTAMP NOT NULL
);
