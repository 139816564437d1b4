-- Reference data with history (CONTRACT §2, §3), exchange rates and the order's currency on
-- each line. Versions are appended as they arrive and never updated: dim_user_history,
-- dim_product_history, fx_rates, dim_user, dim_product and dim_date are views over them
-- (sql/views/), so a late or out-of-order version needs no re-keying of any fact.
-- Where a version came from: a topic record (topic, topic_id, partition, offset) or a CSV file
-- (file). loaded_at and arrival (its place in its batch) order two deliveries of one key and
-- one updated_at: the later one wins.
CREATE TABLE IF NOT EXISTS user_versions (
    user_id      VARCHAR NOT NULL,
    name         VARCHAR,
    email        VARCHAR,
    country      VARCHAR,
    signup_date  DATE,
    updated_at   TIMESTAMP NOT NULL,
    loaded_at    TIMESTAMP NOT NULL,
    arrival      INTEGER NOT NULL,
    batch_id     BIGINT NOT NULL,
    topic        VARCHAR,
    topic_id     VARCHAR,
    "partition"  INTEGER,
    "offset"     BIGINT,
    file         VARCHAR
);
CREATE TABLE IF NOT EXISTS product_versions (
    sku          VARCHAR NOT NULL,
    name         VARCHAR,
    category     VARCHAR,
    list_price   DECIMAL(18, 4),
    updated_at   TIMESTAMP NOT NULL,
    loaded_at    TIMESTAMP NOT NULL,
    arrival      INTEGER NOT NULL,
    batch_id     BIGINT NOT NULL,
    topic        VARCHAR,
    topic_id     VARCHAR,
    "partition"  INTEGER,
    "offset"     BIGINT,
    file         VARCHAR
);
-- On `date`, one unit of `currency` is worth `rate` US dollars.
CREATE TABLE IF NOT EXISTS fx_rate_versions (
    "date"       DATE NOT NULL,
    currency     VARCHAR NOT NULL,
    rate         DECIMAL(18, 10) NOT NULL,
    loaded_at    TIMESTAMP NOT NULL,
    arrival      INTEGER NOT NULL,
    batch_id     BIGINT NOT NULL,
    topic        VARCHAR,
    topic_id     VARCHAR,
    "partition"  INTEGER,
    "offset"     BIGINT,
    file         VARCHAR
);
-- A warehouse made before history kept one row per key: its reference rows become each key's first
-- version; its placeholders become what the dim_user/dim_product views infer from the orders.
INSERT INTO user_versions
    SELECT user_id, name, email, country, signup_date, updated_at, updated_at, 0, 0,
           NULL, NULL, NULL, NULL, 'dim_user (before history)'
    FROM dim_user WHERE NOT is_inferred;
INSERT INTO product_versions
    SELECT sku, name, category, list_price, updated_at, updated_at, 0, 0,
           NULL, NULL, NULL, NULL, 'dim_product (before history)'
    FROM dim_product WHERE NOT is_inferred;
DROP TABLE dim_user;
DROP TABLE dim_product;
ALTER TABLE fact_sales ADD COLUMN currency VARCHAR;
UPDATE fact_sales SET currency = o.currency FROM dim_order AS o
    WHERE o.order_id = fact_sales.order_id AND o.currency IS NOT NULL;
