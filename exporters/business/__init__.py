"""Business exporter: sales, revenue, refunds and more from the platform's SQL database."""
