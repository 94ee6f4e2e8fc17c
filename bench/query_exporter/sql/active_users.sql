SELECT count(DISTINCT user_id) AS active_users FROM user_sessions
 WHERE last_seen_at >= (now() AT TIME ZONE 'UTC') - interval '5 minutes'
