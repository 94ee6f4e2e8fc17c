"""gunicorn entry point: `gunicorn -c python:receiver.gunicorn_conf receiver.wsgi:app`.

Configured exactly like `ticketmon receiver serve`: $TICKETMON_CONFIG plus TICKETMON_*.
"""

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from ticketmon.core import logs
from ticketmon.core.config import load

_settings = load(ReceiverSettings)
logs.setup(_settings.log_level)
app = create_app(_settings)
