SELECT e.name AS event, 1 AS event_on_sale
  FROM events e
 WHERE e.sale_ends_at > (now() AT TIME ZONE 'UTC')
   AND e.sale_starts_at <= (now() AT TIME ZONE 'UTC')
 GROUP BY e.name
