"""Email through a real SMTP server (aiosmtpd): STARTTLS, implicit TLS, auth, multipart."""

from __future__ import annotations

import email
import ssl
from email import policy

import escalation_helpers  # noqa: E402
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from escalation_helpers import INSTALLATION, make_message

from receiver.channels.base import Outcome
from receiver.channels.email import EmailChannel, EmailSettings
from ticketmon.servers.process import free_port
from ticketmon.simulator.notification_sink import self_signed_cert

# fixtures shared by the escalation tests
sink, tls_sink = escalation_helpers.sink, escalation_helpers.tls_sink
templates = escalation_helpers.templates

USER, PASSWORD = "ticketmon", "smtp-pass-123"


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def cert(tmp_path):
    return self_signed_cert(tmp_path / "tls")


def server_tls(cert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return ctx


@pytest.fixture
def smtp_starttls(cert):
    recorder = Recorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), tls_context=server_tls(cert),
        require_starttls=True, authenticator=authenticator, auth_required=True,
    )
    controller.start()
    yield recorder, controller.port
    controller.stop()


@pytest.fixture
def smtp_tls(cert):
    recorder = Recorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls(cert),
        authenticator=authenticator, auth_required=True,
        # aiosmtpd only counts STARTTLS as TLS for AUTH; this socket is TLS from the start
        auth_require_tls=False,
    )
    controller.start()
    yield recorder, controller.port
    controller.stop()


def channel(port, cert, templates, **extra) -> EmailChannel:
    cfg = {"type": "email", "host": "127.0.0.1", "port": port, "username": USER,
           "password": PASSWORD, "from_addr": "ticketmon@example.org",
           "to": ["oncall@example.org", "team@example.org"], "verify": str(cert[0]),
           "timeout": 3, **extra}
    return EmailChannel("email", EmailSettings.model_validate(cfg), templates)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_starttls_with_auth_sends_text_and_html(smtp_starttls, cert, templates):
    recorder, port = smtp_starttls
    result = channel(port, cert, templates).send(make_message())
    assert result.outcome is Outcome.DELIVERED
    mail_from, rcpts, raw = recorder.messages[0]
    assert mail_from == "ticketmon@example.org"
    assert rcpts == ["oncall@example.org", "team@example.org"]
    mail = parse(raw)
    assert mail["Subject"] == "[CRITICAL] Checkout error rate above 5%"
    assert mail["Message-ID"] == f"<ticketmon-{INSTALLATION}-42@example.org>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Firing for: 1h 05m" in text and "Acknowledge: http://127.0.0.1:10190/ack/TOKEN" in text
    assert '<a href="http://127.0.0.1:10190/ack/TOKEN">' in html and "<td>sales</td>" in html


def test_resolve_mail_threads_under_the_first_one(smtp_starttls, cert, templates):
    recorder, port = smtp_starttls
    channel(port, cert, templates).send(make_message("resolve"))
    mail = parse(recorder.messages[0][2])
    assert mail["In-Reply-To"] == f"<ticketmon-{INSTALLATION}-42@example.org>"
    assert mail["Subject"].startswith("[RESOLVED]")
    assert "Resolved by alice" in mail.get_body(("plain",)).get_content()


def test_html_part_escapes_incident_text(smtp_starttls, cert, templates):
    recorder, port = smtp_starttls
    channel(port, cert, templates).send(make_message(title="<script>x</script>"))
    html = parse(recorder.messages[0][2]).get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(smtp_tls, cert, templates):
    recorder, port = smtp_tls
    assert channel(port, cert, templates, security="tls").send(make_message()).outcome \
        is Outcome.DELIVERED
    assert len(recorder.messages) == 1


def test_wrong_password_is_permanent_and_not_reported(smtp_starttls, cert, templates):
    recorder, port = smtp_starttls
    result = channel(port, cert, templates, password="wrong-password").send(make_message())
    assert result.outcome is Outcome.PERMANENT
    assert "wrong-password" not in result.detail and recorder.messages == []


def test_untrusted_certificate_is_permanent(smtp_starttls, cert, templates):
    _, port = smtp_starttls
    assert channel(port, cert, templates, verify=True).send(make_message()).outcome \
        is Outcome.PERMANENT


def test_temporary_and_permanent_recipient_failures(smtp_starttls, cert, templates):
    recorder, port = smtp_starttls
    recorder.rcpt_reply = "451 4.3.0 try again later"
    assert channel(port, cert, templates).send(make_message()).outcome is Outcome.RETRY
    recorder.rcpt_reply = "550 5.1.1 no such user"
    assert channel(port, cert, templates).send(make_message()).outcome is Outcome.PERMANENT


def test_server_down_is_retried(cert, templates):
    assert channel(free_port(), cert, templates).send(make_message()).outcome is Outcome.RETRY


def test_settings_need_recipients_and_both_auth_halves():
    base = {"type": "email", "host": "h", "from_addr": "a@b"}
    with pytest.raises(ValueError, match="recipient"):
        EmailSettings.model_validate({**base, "to": []})
    with pytest.raises(ValueError, match="username and password"):
        EmailSettings.model_validate({**base, "to": ["x@y"], "username": "u"})


def test_credentials_only_over_tls():
    base = {"type": "email", "host": "h", "from_addr": "a@b", "to": ["x@y"],
            "username": "u", "password": "p"}
    with pytest.raises(ValueError, match="only over TLS.*not none"):
        EmailSettings.model_validate({**base, "security": "none"})
    for security in ("starttls", "tls"):
        assert EmailSettings.model_validate({**base, "security": security})
    # a local relay without auth may stay plain
    assert EmailSettings.model_validate({"type": "email", "host": "h", "from_addr": "a@b",
                                         "to": ["x@y"], "security": "none"})
