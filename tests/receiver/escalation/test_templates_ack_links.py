"""User-overridable templates and signed, expiring acknowledge links."""

from __future__ import annotations

import time

import escalation_helpers  # noqa: E402
import pytest
from escalation_helpers import make_message

from receiver.channels.templates import Templates
from receiver.escalation.ack_links import AckLinks, AckTokenError
from ticketmon.core.config import ConfigError

# fixtures shared by the escalation tests
sink, tls_sink = escalation_helpers.sink, escalation_helpers.tls_sink
templates = escalation_helpers.templates


def test_override_directory_wins_file_by_file(tmp_path):
    (tmp_path / "title.txt.j2").write_text("{{ incident.tenant }} | {{ incident.title }}")
    templates = Templates(tmp_path)
    message = make_message()
    assert templates.render("title.txt.j2", message) == "acme | Checkout error rate above 5%"
    # files not overridden keep the defaults
    assert templates.render("text.txt.j2", message).startswith("CRITICAL: Checkout")


def test_broken_or_misspelt_override_fails_at_start_naming_the_file(tmp_path):
    (tmp_path / "text.txt.j2").write_text("{{ incident.title ")
    with pytest.raises(ConfigError, match="template text.txt.j2"):
        Templates(tmp_path)
    (tmp_path / "text.txt.j2").write_text("{{ incidnet.title }}")
    with pytest.raises(ConfigError, match="incidnet"):
        Templates(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        Templates(tmp_path / "missing")


def test_ack_link_round_trip_forgery_and_expiry():
    links = AckLinks("s" * 32, "http://127.0.0.1:10190/", max_age=60)
    url = links.url("42", "slack")
    assert url.startswith("http://127.0.0.1:10190/ack/")
    token = url.rsplit("/", 1)[1]
    claim = links.verify(token)
    assert (claim.incident_id, claim.channel) == ("42", "slack")
    with pytest.raises(AckTokenError, match="not valid"):
        links.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    with pytest.raises(AckTokenError, match="not valid"):
        AckLinks("another-secret" * 3, "http://x").verify(token)
    with pytest.raises(AckTokenError, match="not valid"):
        links.verify("garbage")
    expired = AckLinks("s" * 32, "http://x", max_age=0)
    old = expired.token("42", "slack")
    time.sleep(1.05)  # timestamps have one-second resolution
    with pytest.raises(AckTokenError, match="expired"):
        expired.verify(old)
