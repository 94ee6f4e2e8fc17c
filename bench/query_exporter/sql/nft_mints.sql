SELECT outcome, count(*) AS nft_mints FROM nft_mints GROUP BY outcome
