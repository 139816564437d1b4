-- Sales per channel (the order's metadata.source); orders without one fall under NULL.
SELECT o.source, sum(f.quantity * f.unit_price) AS total_sales
FROM fact_sales AS f
JOIN dim_order AS o ON o.order_id = f.order_id
WHERE (CAST($since AS TIMESTAMP) IS NULL OR f.created_at >= CAST($since AS TIMESTAMP))
  AND (CAST($until AS TIMESTAMP) IS NULL OR f.created_at < CAST($until AS TIMESTAMP))
GROUP BY o.source
ORDER BY o.source IS NULL, total_sales DESC, o.source
LIMIT $limit
