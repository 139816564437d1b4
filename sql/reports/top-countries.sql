-- Countries by sales; lines whose user is unknown or has no country fall under NULL.
SELECT u.country, sum(f.quantity * f.unit_price) AS total_sales
FROM fact_sales AS f
LEFT JOIN dim_user AS u ON u.user_id = f.user_id
GROUP BY u.country
ORDER BY u.country IS NULL, total_sales DESC, u.country
LIMIT $limit
