-- Top users by sales in the reporting currency; a NULL user after every other row.
WITH lines AS (
    SELECT f.user_id AS k, f.currency, CAST(f.created_at AS DATE) AS d,
           f.quantity * f.unit_price AS value
    FROM fact_sales AS f
    WHERE {{window}}
),
{{priced}}
SELECT k AS user_id, {{total_sales}} AS total_sales, $currency AS currency
FROM grouped
GROUP BY k
ORDER BY k IS NULL, total_sales DESC, k
LIMIT $limit
