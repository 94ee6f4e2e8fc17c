"""One HTTP POST with a timeout, mapped onto a delivery outcome (shared by Slack and webhook)."""

from __future__ import annotations

import requests

from receiver.channels.base import DeliveryResult, Outcome, classify_status


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
