-- total_sales of a group (included where a report says {{total_sales}}): each branch is cast to
-- DECIMAL(38,14) first, or DuckDB would unify the CASE at the smallest scale and round each
-- converted sum to 4 decimals before adding them (found against the oracle: 275.42 for
-- 275.41496...).
CAST(round_even(
    coalesce(sum(CASE WHEN currency = $currency THEN CAST(s AS DECIMAL(38, 14))
                      WHEN $currency = 'USD' THEN CAST(s * rate_x AS DECIMAL(38, 14)) END), 0)
    + coalesce(CAST(sum(CASE WHEN currency <> $currency AND $currency <> 'USD'
                             THEN CAST(s * rate_x AS DOUBLE) / CAST(rate_c AS DOUBLE) END)
                    AS DECIMAL(38, 14)), 0),
    2) AS DECIMAL(38, 2))
