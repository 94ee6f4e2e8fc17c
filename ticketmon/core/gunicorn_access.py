"""gunicorn's access line per request, only when a service's variable asks for it.

gunicorn writes one as soon as any logging config is given (the services give
`logconfig_dict` so that its own lines are JSON and redacted), and formatting it through
the redacting JSON formatter costs about as much as a small request itself: measured, a
fraud check's cost and a third of a replayed webhook post's. What each request did is in
the service's metrics (per route and status) and its own log lines (refusals, changes)."""

from __future__ import annotations

import os

from gunicorn import glogging


class OptInAccessLogger(glogging.Logger):
    """Subclass it with `env` set to the variable that turns access lines on (read once,
    in the master); `--access-logfile` on the command line turns them on too."""

    env = ""

    def __init__(self, cfg) -> None:
        self.access_asked = bool(self.env and os.environ.get(self.env))
        super().__init__(cfg)

    @property
    def access_log_enabled(self) -> bool:
        return self.access_asked or bool(self.cfg.accesslog)
