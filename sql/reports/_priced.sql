-- Shared by the money reports (included where a report says {{priced}}): each line with the
-- rates of its order's currency X and of the reporting currency C in effect on the order's
-- UTC date (the latest rate on or before it; USD is 1 from the start of time), and whether it
-- converts: X = C, or both rates are known (CONTRACT §5, docs/interface.md §5).
rates AS (
    SELECT "date", currency, rate FROM fx_rates WHERE currency <> 'USD'
    UNION ALL
    SELECT DATE '-infinity', 'USD', CAST(1 AS DECIMAL(18, 10))
),
priced AS (
    SELECT l.*, rx.rate AS rate_x, rc.rate AS rate_c,
           coalesce(l.currency = $currency, false)
           OR (rx.rate IS NOT NULL AND rc.rate IS NOT NULL) AS convertible
    FROM lines AS l
    ASOF LEFT JOIN rates AS rx ON rx.currency = l.currency AND l.d >= rx."date"
    ASOF LEFT JOIN (SELECT "date", rate FROM rates WHERE currency = $currency) AS rc
        ON l.d >= rc."date"
),
-- Lines of one group, one currency and one pair of rates summed exactly first: the one
-- inexact step, a division by C's rate when C is not USD, then runs once per group.
grouped AS (
    SELECT k, currency, rate_x, rate_c, sum(value) AS s
    FROM priced
    WHERE convertible
    GROUP BY ALL
)
