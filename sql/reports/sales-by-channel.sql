-- Sales per channel (the order's metadata.source) in the reporting currency; orders without
-- one fall under NULL.
WITH lines AS (
    SELECT o.source AS k, f.currency, CAST(f.created_at AS DATE) AS d,
           f.quantity * f.unit_price AS value
    FROM fact_sales AS f
    JOIN dim_order AS o ON o.order_id = f.order_id
    WHERE {{window}}
),
{{priced}}
SELECT k AS source, {{total_sales}} AS total_sales, $currency AS currency
FROM grouped
GROUP BY k
ORDER BY k IS NULL, total_sales DESC, k
LIMIT $limit
