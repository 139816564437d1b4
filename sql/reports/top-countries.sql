-- Countries by sales in the reporting currency. As was (the default): the country of the
-- user's version in effect at the order's created_at (the current one when it has none);
-- $as_is: the current country. Unknown users and countries fall under NULL.
WITH lines AS (
    SELECT CASE WHEN $as_is OR f.created_at IS NULL THEN u.country ELSE h.country END AS k,
           f.currency, CAST(f.created_at AS DATE) AS d, f.quantity * f.unit_price AS value
    FROM fact_sales AS f
    ASOF LEFT JOIN dim_user_history AS h
        ON h.user_id = f.user_id AND f.created_at >= h.valid_from
    LEFT JOIN dim_user AS u ON u.user_id = f.user_id
    WHERE {{window}}
),
{{priced}}
SELECT k AS country, {{total_sales}} AS total_sales, $currency AS currency
FROM grouped
GROUP BY k
ORDER BY k IS NULL, total_sales DESC, k
LIMIT $limit
