-- The lines that cannot be converted into the reporting currency, by their order's currency
-- (NULL last): how many, and their total in that currency. They are in no total_sales.
WITH lines AS (
    SELECT f.currency, CAST(f.created_at AS DATE) AS d, f.quantity * f.unit_price AS value,
           NULL AS k
    FROM fact_sales AS f
    WHERE {{window}}
),
{{priced}}
SELECT currency, count(*) AS lines, sum(value) AS total
FROM priced
WHERE NOT convertible
GROUP BY currency
ORDER BY currency IS NULL, total DESC, currency
LIMIT $limit
