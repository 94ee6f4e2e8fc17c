"""Notification channels, one module each: PagerDuty, Slack, email, signed webhook."""
