"""The stream server's app: `gunicorn -c python:receiver.stream.gunicorn_conf
receiver.stream.wsgi:app` (what `ticketmon receiver stream` runs).

The receiver's own app factory and settings ($TICKETMON_CONFIG plus TICKETMON_*), with
only the stream and the ops endpoints: its workers hold long connections, so they run
beside the receiver's sync workers instead of taking one each from the webhook.
"""

from receiver.app import STREAM_BLUEPRINTS, create_app
from receiver.settings import ReceiverSettings
from ticketmon.core import logs
from ticketmon.core.config import load

_settings = load(ReceiverSettings)
logs.setup(_settings.log_level)
app = create_app(_settings, blueprints=STREAM_BLUEPRINTS)
