"""HTTP API blueprints, one per area: webhook, incidents, alerts, admin, ops, openapi."""
