(CAST($since AS TIMESTAMP) IS NULL OR f.created_at >= CAST($since AS TIMESTAMP))
  AND (CAST($until AS TIMESTAMP) IS NULL OR f.created_at < CAST($until AS TIMESTAMP))
