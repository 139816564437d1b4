-- Top users by sales. total_sales = sum(quantity * unit_price).
-- Measure descending, ties by key ascending, a NULL key after every other row.
SELECT user_id, sum(quantity * unit_price) AS total_sales
FROM fact_sales AS f
WHERE (CAST($since AS TIMESTAMP) IS NULL OR f.created_at >= CAST($since AS TIMESTAMP))
  AND (CAST($until AS TIMESTAMP) IS NULL OR f.created_at < CAST($until AS TIMESTAMP))
GROUP BY user_id
ORDER BY user_id IS NULL, total_sales DESC, user_id
LIMIT $limit
