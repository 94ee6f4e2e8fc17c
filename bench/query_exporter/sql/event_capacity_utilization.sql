SELECT e.name AS event,
       max(CAST((SELECT count(*) FROM tickets t WHERE t.event_id = e.id) AS FLOAT)
           / e.capacity) AS event_capacity_utilization
  FROM events e
 WHERE e.starts_at >= (now() AT TIME ZONE 'UTC')
   AND e.starts_at < (now() AT TIME ZONE 'UTC') + interval '30 days' AND e.capacity > 0
 GROUP BY e.name
