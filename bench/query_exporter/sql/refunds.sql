SELECT reason, count(*) AS refunds FROM refunds GROUP BY reason
