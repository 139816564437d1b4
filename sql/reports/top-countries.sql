-- Countries by sales; lines whose user is unknown or has no country fall under NULL.
SELECT u.country, sum(f.quantity * f.unit_price) AS total_sales
FROM fact_sales AS f
LEFT JOIN dim_user AS u ON u.user_id = f.user_id
WHERE (CAST($since AS TIMESTAMP) IS NULL OR f.created_at >= CAST($since AS TIMESTAMP))
  AND (CAST($until AS TIMESTAMP) IS NULL OR f.created_at < CAST($until AS TIMESTAMP))
GROUP BY u.country
ORDER BY u.country IS NULL, total_sales DESC, u.country
LIMIT $limit
