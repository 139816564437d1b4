-- The star schema and the pipeline's state in a DuckLake warehouse: the same tables and columns
-- as a DuckDB file (001 and 002 of sql/), without keys or indexes, which DuckLake does not have.
-- Uniqueness holds by design (per-partition ledgers fence the owners; an order that arrives on
-- another partition than its key's serialises with every ledger), and `audit` proves it.
-- The ledgers, one table per (topic, partition), are created on first assignment.
CREATE TABLE IF NOT EXISTS dim_user (
    user_id VARCHAR NOT NULL, name VARCHAR, email VARCHAR, country VARCHAR, signup_date DATE,
    is_inferred BOOLEAN NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS dim_product (
    sku VARCHAR NOT NULL, name VARCHAR, category VARCHAR, list_price DECIMAL(18, 4),
    is_inferred BOOLEAN NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS dim_order (
    order_id VARCHAR NOT NULL, user_id VARCHAR, amount DECIMAL(18, 4), currency VARCHAR,
    source VARCHAR, promo VARCHAR, created_at TIMESTAMP, line_count INTEGER NOT NULL,
    kafka_topic VARCHAR NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,
    batch_id BIGINT NOT NULL, kafka_topic_id VARCHAR);
CREATE TABLE IF NOT EXISTS fact_sales (
    order_id VARCHAR NOT NULL, line_number INTEGER NOT NULL, sku VARCHAR NOT NULL,
    user_id VARCHAR, quantity BIGINT NOT NULL, unit_price DECIMAL(18, 4) NOT NULL,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS processed_orders (
    order_id VARCHAR NOT NULL, key_hash UBIGINT NOT NULL, content_hash BIGINT NOT NULL,
    batch_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected_events (
    topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL,
    reason VARCHAR NOT NULL, detail VARCHAR, order_id VARCHAR, kafka_key BLOB, payload BLOB,
    payload_text VARCHAR, batch_id BIGINT NOT NULL, topic_id VARCHAR);
CREATE TABLE IF NOT EXISTS dropped_duplicates (
    topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL,
    order_id VARCHAR NOT NULL, batch_id BIGINT NOT NULL, topic_id VARCHAR);
CREATE TABLE IF NOT EXISTS skipped_offsets (
    topic VARCHAR NOT NULL, topic_id VARCHAR, "partition" INTEGER NOT NULL,
    from_offset BIGINT NOT NULL, to_offset BIGINT NOT NULL, reason VARCHAR NOT NULL,
    batch_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS load_batches (
    batch_id BIGINT NOT NULL, committed_at TIMESTAMP NOT NULL, records INTEGER NOT NULL,
    loaded INTEGER NOT NULL, duplicates INTEGER NOT NULL, rejected INTEGER NOT NULL,
    fact_rows INTEGER NOT NULL);
-- Batches that insert dimension rows (placeholders, reference data) update this one row, so
-- that two members never insert the same user or sku at once: DuckLake lets two INSERTs into
-- one table commit together, but not two UPDATEs of one table.
-- Created with its row in one statement: members creating it at once then conflict at COMMIT
-- (measured on 1.5.5), where a separate INSERT ... WHERE NOT EXISTS left one row per member.
CREATE TABLE IF NOT EXISTS dim_guard AS SELECT CAST(0 AS BIGINT) AS n;
