SELECT n.currency AS currency, v.name AS venue, sum(n.amount) AS revenue_minor_units
  FROM (SELECT o.event_id, p.currency, sum(p.amount_minor) AS amount
          FROM payments p JOIN orders o ON o.id = p.order_id
         WHERE p.outcome = 'succeeded'
         GROUP BY o.event_id, p.currency) n
  JOIN events e ON e.id = n.event_id
  JOIN venues v ON v.id = e.venue_id
 GROUP BY n.currency, v.name
