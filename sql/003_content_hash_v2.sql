-- Re-sends are compared by a hash of each order's content. Since numbers are read as exact
-- decimals, money enters that hash as a 4-decimal value: a file whose processed_orders holds
-- hashes of the older form would call an old order's identical re-send a conflict. Such a
-- file is marked, and the consumer refuses it with one line (docs/interface.md §4).
INSERT INTO pipeline_meta
    SELECT 'content_hash', CASE WHEN EXISTS (SELECT 1 FROM processed_orders) THEN 'v1' ELSE 'v2' END
    ON CONFLICT DO NOTHING;
