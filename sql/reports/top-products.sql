-- Best-selling products by units.
SELECT f.sku, p.name, sum(f.quantity) AS units_sold
FROM fact_sales AS f
LEFT JOIN dim_product AS p ON p.sku = f.sku
GROUP BY f.sku, p.name
ORDER BY f.sku IS NULL, units_sold DESC, f.sku
LIMIT $limit
