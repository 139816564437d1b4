-- Best-selling products by units (sku is never NULL).
SELECT f.sku, p.name, sum(f.quantity) AS units_sold
FROM fact_sales AS f
LEFT JOIN dim_product AS p ON p.sku = f.sku
WHERE (CAST($since AS TIMESTAMP) IS NULL OR f.created_at >= CAST($since AS TIMESTAMP))
  AND (CAST($until AS TIMESTAMP) IS NULL OR f.created_at < CAST($until AS TIMESTAMP))
GROUP BY f.sku, p.name
ORDER BY units_sold DESC, f.sku
LIMIT $limit
