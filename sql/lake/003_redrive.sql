-- Redrive (orders-consumer redrive): a rejected record read again under today's rules and
-- loaded, or dropped as an identical re-send, leaves rejected_events for dim_order or
-- dropped_duplicates in one transaction, and is remembered here, so that `audit` can say which
-- offsets were redriven (each offset is still accounted for once, where it is now).
CREATE TABLE IF NOT EXISTS redriven_events (
    topic        VARCHAR NOT NULL,
    topic_id     VARCHAR,
    "partition"  INTEGER NOT NULL,
    "offset"     BIGINT NOT NULL,
    reason       VARCHAR NOT NULL,   -- why it had been rejected
    outcome      VARCHAR NOT NULL,   -- loaded or duplicate
    batch_id     BIGINT NOT NULL,
    redriven_at  TIMESTAMP NOT NULL
);
