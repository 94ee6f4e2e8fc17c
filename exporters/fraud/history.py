"""Per-user memory for the patterns that need the past: bounded by count and by age.

One compact float array per user (previous purchase location and time, then the times
of the last few checks) in an LRU-ordered dict: the least recently seen user is at the
front, so expiring by age and evicting over the cap are both O(1) per check. About
300 bytes per user; `max_users` bounds the total whatever the number of distinct
users. Each gunicorn worker has its own history (a user's checks spread over workers
are each seen by fewer); that is the price of no shared store on the request path.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import OrderedDict

NAN = math.nan
TIMES = 8  # check times remembered per user: enough for machine-timing and a rate
LAT, LON, GEO_AT, FIRST_TIME = 0, 1, 2, 3


class UserHistory:
    def __init__(self, max_users: int, ttl_seconds: float) -> None:
        self.max_users = max_users
        self.ttl = ttl_seconds
        self._users: OrderedDict[str, array] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._users)

    def record(self, user: str, now: float, geo: tuple[float, float] | None
               ) -> tuple[list[float], tuple[float, float, float] | None]:
        """Add this check; return the user's earlier check times and previous location."""
        with self._lock:
            entry = self._users.get(user)
            if entry is None or now - entry[-1] > self.ttl:
                entry = array("d", [NAN] * (FIRST_TIME + TIMES))
                self._users[user] = entry
            else:
                self._users.move_to_end(user)
            times = [t for t in entry[FIRST_TIME:] if not math.isnan(t)]
            previous = None if math.isnan(entry[GEO_AT]) else (entry[LAT], entry[LON],
                                                               entry[GEO_AT])
            entry[FIRST_TIME:-1] = entry[FIRST_TIME + 1:]
            entry[-1] = now
            if geo is not None:
                entry[LAT], entry[LON], entry[GEO_AT] = geo[0], geo[1], now
            self._expire(now)
        return times, previous

    def _expire(self, now: float) -> None:
        users = self._users
        while len(users) > self.max_users:
            users.popitem(last=False)
            self.evicted += 1
        while users:
            oldest = next(iter(users.values()))
            if now - oldest[-1] <= self.ttl:
                break
            users.popitem(last=False)
            self.evicted += 1
