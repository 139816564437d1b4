CAST(round_even(
    coalesce(sum(CASE WHEN currency = $currency THEN s
                      WHEN $currency = 'USD' THEN s * rate_x END), 0)
    + coalesce(CAST(sum(CASE WHEN currency <> $currency AND $currency <> 'USD'
                             THEN CAST(s * rate_x AS DOUBLE) / CAST(rate_c AS DOUBLE) END)
                    AS DECIMAL(38, 10)), 0),
    2) AS DECIMAL(38, 2))
