-- Best-selling products by units (every line, converted or not); the current product name.
SELECT f.sku, p.name, sum(f.quantity) AS units_sold
FROM fact_sales AS f
LEFT JOIN dim_product AS p ON p.sku = f.sku
WHERE {{window}}
GROUP BY f.sku, p.name
ORDER BY units_sold DESC, f.sku
LIMIT $limit
