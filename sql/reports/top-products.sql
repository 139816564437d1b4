-- Best-selling products by units (sku is never NULL).
SELECT f.sku, p.name, sum(f.quantity) AS units_sold
FROM fact_sales AS f
LEFT JOIN dim_product AS p ON p.sku = f.sku
GROUP BY f.sku, p.name
ORDER BY units_sold DESC, f.sku
LIMIT $limit
