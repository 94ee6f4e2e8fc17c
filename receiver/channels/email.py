"""Email over SMTP: STARTTLS, implicit TLS or plain (local relays), optional auth.

A multipart message with a text part and an HTML part, threaded per incident so an
acknowledge or resolve lands under the original alert in the recipient's mail client.
SMTP 4xx replies and connection problems are retried; 5xx replies are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from pydantic import SecretStr, model_validator

from receiver.channels.base import DeliveryResult, Message, Outcome
from receiver.channels.templates import Templates
from ticketmon.core.config import Settings


class EmailSettings(Settings):
    type: Literal["email"]
    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str
    to: list[str]
    timeout: float = 15.0
    verify: bool | str = True  # False, True or a CA bundle path

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if not self.to:
            raise ValueError("to: at least one recipient is needed")
        if bool(self.username) != bool(self.password):
            raise ValueError("SMTP auth needs both username and password")
        if self.security == "none" and (self.username or self.password):
            raise ValueError("SMTP credentials are sent only over TLS: with username and "
                             "password set, security must be starttls or tls, not none")
        return self


class EmailChannel:
    kind = "email"

    def __init__(self, name: str, settings: EmailSettings, templates: Templates) -> None:
        self.name = name
        self.settings = settings
        self.templates = templates

    def tls_context(self) -> ssl.SSLContext:
        verify = self.settings.verify
        if verify is False:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)

    def build(self, message: Message) -> EmailMessage:
        mail = EmailMessage()
        domain = self.settings.from_addr.rpartition("@")[2] or "ticketmon"
        thread = f"<{message.thread_key}@{domain}>"
        mail["Subject"] = self.templates.render("title.txt.j2", message).replace("\n", " ")
        mail["From"] = self.settings.from_addr
        mail["To"] = ", ".join(self.settings.to)
        mail["Date"] = formatdate(message.now)
        if message.action == "trigger" and message.step == 0 and message.round == 0:
            mail["Message-ID"] = thread
        else:
            mail["Message-ID"] = f"<{message.delivery_id}@{domain}>"
            mail["In-Reply-To"] = thread
            mail["References"] = thread
        mail["X-Ticketmon-Delivery"] = message.delivery_id
        mail.set_content(self.templates.render("text.txt.j2", message) + "\n")
        mail.add_alternative(self.templates.render("email.html.j2", message), subtype="html")
        return mail

    def send(self, message: Message) -> DeliveryResult:
        return self.deliver(self.build(message))

    def deliver(self, mail: EmailMessage) -> DeliveryResult:
        """Send a built message (an incident notification or a scheduled report)."""
        s = self.settings
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                        context=self.tls_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=self.tls_context())
                if s.username and s.password:
                    smtp.login(s.username, s.password.get_secret_value())
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return _by_code(min(codes) if codes else 550, "recipients refused")
        except smtplib.SMTPResponseException as exc:
            return _by_code(exc.smtp_code, f"SMTP {exc.smtp_code}")
        except smtplib.SMTPNotSupportedError:
            return DeliveryResult(Outcome.PERMANENT, "server does not support STARTTLS or AUTH")
        except ssl.SSLCertVerificationError:
            return DeliveryResult(Outcome.PERMANENT, "TLS certificate not trusted")
        except (OSError, smtplib.SMTPException) as exc:
            return DeliveryResult(Outcome.RETRY, f"SMTP connection: {type(exc).__name__}")
        if refused:
            return DeliveryResult.delivered(f"refused for {len(refused)} of {len(s.to)}")
        return DeliveryResult.delivered("SMTP 250")


def _by_code(code: int, detail: str) -> DeliveryResult:
    outcome = Outcome.RETRY if 400 <= code < 500 else Outcome.PERMANENT
    return DeliveryResult(outcome, detail)
