SELECT provider, outcome, count(*) AS payments FROM payments GROUP BY provider, outcome
