-- Tickets sold per event, venue and ticket type, all time (query-exporter keeps no
-- watermark, so it recounts). Events outside the top 1300 by sales of the last 400 days
-- are folded into "other", like the business exporter's cardinality guard in the bench.
WITH top_events AS (
    SELECT e.name
      FROM (SELECT event_id, count(*) AS sold FROM tickets
             WHERE sold_at >= (now() AT TIME ZONE 'UTC') - interval '400 days'
             GROUP BY event_id) n
      JOIN events e ON e.id = n.event_id
     GROUP BY e.name ORDER BY sum(n.sold) DESC, e.name LIMIT 1300)
SELECT CASE WHEN e.name IN (SELECT name FROM top_events) THEN e.name ELSE 'other' END AS event,
       v.name AS venue, tt.name AS ticket_type, sum(n.sold) AS tickets_sold
  FROM (SELECT event_id, ticket_type_id, count(*) AS sold FROM tickets
         GROUP BY event_id, ticket_type_id) n
  JOIN events e ON e.id = n.event_id
  JOIN venues v ON v.id = e.venue_id
  JOIN ticket_types tt ON tt.id = n.ticket_type_id
 GROUP BY 1, 2, 3
