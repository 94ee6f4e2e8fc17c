"""gunicorn entry point: `gunicorn 'exporters.fraud.wsgi:app'` (settings from $TICKETMON_CONFIG)."""

from exporters.fraud.app import create_app

app = create_app()
