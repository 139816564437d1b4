-- Topic identity (CONTRACT §4): a topic deleted and re-created under the same name is another
-- topic. Its Kafka topic id is kept with the ledger and with every offset recorded, so that
-- `audit` can account for each offset of each topic exactly once.
ALTER TABLE kafka_offsets ADD COLUMN topic_id VARCHAR;
-- Where this warehouse began reading the partition (its log start at the time).
ALTER TABLE kafka_offsets ADD COLUMN first_offset BIGINT;
ALTER TABLE dim_order ADD COLUMN kafka_topic_id VARCHAR;
ALTER TABLE dropped_duplicates ADD COLUMN topic_id VARCHAR;
-- rejected_events was keyed (topic, partition, offset), which a re-created topic reuses; the
-- key is now (topic, topic_id, partition, offset), and `audit` proves it unique.
CREATE TABLE rejected_events_v2 AS
    SELECT *, CAST(NULL AS VARCHAR) AS topic_id FROM rejected_events;
DROP TABLE rejected_events;
ALTER TABLE rejected_events_v2 RENAME TO rejected_events;
-- Offsets past the ledger that retention deleted before the warehouse read them: never
-- skipped in silence.
CREATE TABLE IF NOT EXISTS skipped_offsets (
    topic        VARCHAR NOT NULL,
    topic_id     VARCHAR,
    "partition"  INTEGER NOT NULL,
    from_offset  BIGINT NOT NULL,
    to_offset    BIGINT NOT NULL,
    reason       VARCHAR NOT NULL,
    batch_id     BIGINT NOT NULL
);
