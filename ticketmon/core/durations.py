"""One way to write a length of time in every config file, flag and API body.

`90s`, `5m`, `1h30m`, `7d`, `2w`, or a number of seconds; units descend from weeks to
seconds, each at most once. Settings declare `Duration` and get seconds as a float.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(
    r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_SECONDS = (7 * 86400, 86400, 3600, 60, 1)


def parse_duration(value: Any) -> float:
    """'90s', '5m', '1h30m', '7d', '2w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30s, 5m, 1h or 7d is expected")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())) and any(m.groups()):
        seconds = sum(float(part) * unit for part, unit in zip(m.groups(), _SECONDS, strict=True)
                      if part)
    else:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
