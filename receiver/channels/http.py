"""One HTTP POST with a timeout, mapped onto a delivery outcome (shared by Slack and webhook),
over a keep-alive session shared by a channel's delivery threads."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from receiver.channels.base import DeliveryResult, Outcome, classify_status

MAX_THREADS = 64  # WorkerSettings.concurrency's upper bound


def session() -> requests.Session:
    """A session whose pool keeps a connection per delivery thread: requests' default of
    10 would close and reopen connections beyond that under a backlog."""
    http = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_THREADS)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    verify: bool | str = True,
) -> DeliveryResult:
    """POST `body`; connection problems and timeouts are worth a retry, never an exception."""
    try:
        response = session.post(
            url, data=body, headers=headers, timeout=timeout, verify=verify,
            allow_redirects=False,
        )
    except requests.Timeout:
        return DeliveryResult(Outcome.RETRY, "timeout")
    except requests.ConnectionError as exc:
        return DeliveryResult(Outcome.RETRY, f"connection error: {type(exc).__name__}")
    except requests.RequestException as exc:
        return DeliveryResult(Outcome.PERMANENT, f"request error: {type(exc).__name__}")
    with response:
        return classify_status(response.status_code, response.headers.get("Retry-After"))
