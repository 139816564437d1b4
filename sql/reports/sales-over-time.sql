-- Sales per period ($grain: hour, day, week from Monday, month), UTC, from the period of the
-- earliest order to the latest's, empty periods as zeros. orders and units count every order
-- with a created_at in the period (and its lines), converted or not.
WITH orders AS (
    SELECT date_trunc($grain, f.created_at) AS k
    FROM dim_order AS f
    WHERE f.created_at IS NOT NULL AND {{window}}
),
lines AS (
    SELECT date_trunc($grain, f.created_at) AS k, f.currency, CAST(f.created_at AS DATE) AS d,
           f.quantity * f.unit_price AS value, f.quantity
    FROM fact_sales AS f
    WHERE f.created_at IS NOT NULL AND {{window}}
),
{{priced}},
money AS (SELECT k, {{total_sales}} AS total_sales FROM grouped GROUP BY k),
units AS (SELECT k, sum(quantity) AS units FROM lines GROUP BY k),
counts AS (SELECT k, count(*) AS orders FROM orders GROUP BY k),
periods AS (
    SELECT unnest(generate_series(min(k), max(k), CASE $grain
        WHEN 'hour' THEN INTERVAL 1 HOUR WHEN 'day' THEN INTERVAL 1 DAY
        WHEN 'week' THEN INTERVAL 7 DAY ELSE INTERVAL 1 MONTH END)) AS k
    FROM orders
)
SELECT CASE WHEN $grain = 'hour' THEN strftime(p.k, '%Y-%m-%dT%H:00:00Z')
            ELSE strftime(p.k, '%Y-%m-%d') END AS period,
       coalesce(c.orders, 0) AS orders,
       CAST(coalesce(u.units, 0) AS BIGINT) AS units,
       coalesce(m.total_sales, CAST(0 AS DECIMAL(38, 2))) AS total_sales,
       $currency AS currency
FROM periods AS p
LEFT JOIN counts AS c ON c.k = p.k
LEFT JOIN units AS u ON u.k = p.k
LEFT JOIN money AS m ON m.k = p.k
ORDER BY p.k
LIMIT $limit
