SELECT count(*) AS listings_active FROM marketplace_listings WHERE status = 'active'
