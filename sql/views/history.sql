-- The views over the append-only reference tables (CONTRACT §2, §3; docs/interface.md).
-- Created (or replaced) at every start, on a file and on a lake alike. Window names are unique
-- in the whole script: DuckDB 1.5.5 refuses a name a previous statement of a script defined.

-- One version per (user_id, updated_at): a later delivery with other content replaces an
-- earlier one. Then a version whose content equals the one before it adds nothing. The first
-- version that remains is in effect from the start of time (late-arriving dimensions).
CREATE OR REPLACE VIEW dim_user_history AS
WITH latest AS (
    SELECT user_id, name, email, country, signup_date, updated_at
    FROM user_versions
    QUALIFY row_number() OVER (
        PARTITION BY user_id, updated_at ORDER BY loaded_at DESC, arrival DESC) = 1
), changes AS (
    SELECT *, row_number() OVER user_earlier = 1
              OR (lag(struct_pack(name, email, country, signup_date)) OVER user_earlier)
                 IS DISTINCT FROM struct_pack(name, email, country, signup_date) AS changed
    FROM latest
    WINDOW user_earlier AS (PARTITION BY user_id ORDER BY updated_at)
), kept AS (
    SELECT * EXCLUDE (changed) FROM changes WHERE changed
)
SELECT user_id, name, email, country, signup_date,
       CASE WHEN row_number() OVER user_order = 1 THEN TIMESTAMP '-infinity' ELSE updated_at END
           AS valid_from,
       lead(updated_at) OVER user_order AS valid_to,
       lead(updated_at) OVER user_order IS NULL AS is_current,
       updated_at
FROM kept
WINDOW user_order AS (PARTITION BY user_id ORDER BY updated_at);

CREATE OR REPLACE VIEW dim_product_history AS
WITH latest AS (
    SELECT sku, name, category, list_price, updated_at
    FROM product_versions
    QUALIFY row_number() OVER (
        PARTITION BY sku, updated_at ORDER BY loaded_at DESC, arrival DESC) = 1
), changes AS (
    SELECT *, row_number() OVER product_earlier = 1
              OR (lag(struct_pack(name, category, list_price)) OVER product_earlier)
                 IS DISTINCT FROM struct_pack(name, category, list_price) AS changed
    FROM latest
    WINDOW product_earlier AS (PARTITION BY sku ORDER BY updated_at)
), kept AS (
    SELECT * EXCLUDE (changed) FROM changes WHERE changed
)
SELECT sku, name, category, list_price,
       CASE WHEN row_number() OVER product_order = 1 THEN TIMESTAMP '-infinity' ELSE updated_at END
           AS valid_from,
       lead(updated_at) OVER product_order AS valid_to,
       lead(updated_at) OVER product_order IS NULL AS is_current,
       updated_at
FROM kept
WINDOW product_order AS (PARTITION BY sku ORDER BY updated_at);

-- The current version of each key, and every key an order names that has no version yet
-- (is_inferred), so the seed's joins on natural keys still work.
CREATE OR REPLACE VIEW dim_user AS
SELECT user_id, name, email, country, signup_date, false AS is_inferred
FROM dim_user_history WHERE is_current
UNION ALL
SELECT DISTINCT o.user_id, NULL, NULL, NULL, CAST(NULL AS DATE), true
FROM dim_order AS o
WHERE o.user_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM user_versions AS v WHERE v.user_id = o.user_id);

CREATE OR REPLACE VIEW dim_product AS
SELECT sku, name, category, list_price, false AS is_inferred
FROM dim_product_history WHERE is_current
UNION ALL
SELECT DISTINCT f.sku, NULL, NULL, CAST(NULL AS DECIMAL(18, 4)), true
FROM fact_sales AS f
WHERE NOT EXISTS (SELECT 1 FROM product_versions AS v WHERE v.sku = f.sku);

-- One rate per (date, currency): a later delivery of the same day's rate replaces the earlier.
CREATE OR REPLACE VIEW fx_rates AS
SELECT "date", currency, rate
FROM fx_rate_versions
QUALIFY row_number() OVER (
    PARTITION BY "date", currency ORDER BY loaded_at DESC, arrival DESC) = 1;

-- Every calendar day from the earliest order's date to the latest's (UTC).
CREATE OR REPLACE VIEW dim_date AS
SELECT CAST(strftime(d, '%Y%m%d') AS INTEGER) AS date_key,
       d AS "date",
       year(d) AS "year",
       quarter(d) AS quarter,
       month(d) AS "month",
       week(d) AS iso_week,
       isodow(d) AS day_of_week,
       isodow(d) >= 6 AS is_weekend
FROM (
    SELECT CAST(unnest(generate_series(
        min(CAST(created_at AS DATE)), max(CAST(created_at AS DATE)), INTERVAL 1 DAY)) AS DATE) AS d
    FROM dim_order
    WHERE created_at IS NOT NULL
);
