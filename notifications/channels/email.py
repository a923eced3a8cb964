"""E-mail over SMTP (the standard library's smtplib, in a thread: the worker's loop stays free).
Recipients are the subscription's addresses."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import ClassVar

import httpx

from notifications.channels.base import Answer, Message, StrictConfig


class EmailConfig(StrictConfig):
    host: str
    port: int = 25
    sender: str
    starttls: bool = False
    username: str = ""
    timeout_s: float = 10.0


class EmailSecret(StrictConfig):
    password: str = ""


def _send(config: EmailConfig, secret: EmailSecret, mail: EmailMessage) -> Answer:
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            if config.starttls:
                smtp.starttls()
            if config.username:
                smtp.login(config.username, secret.password)
            refused = smtp.send_message(mail)
            code, text = smtp.noop()
    except (OSError, smtplib.SMTPException) as err:
        status = getattr(err, "smtp_code", None)
        return Answer(False, status, f"{type(err).__name__}: {err}")
    if refused:
        return Answer(False, code, f"refused: {refused}")
    return Answer(True, 250, f"accepted by {config.host}:{config.port} ({code} {text.decode()})")


class Email:
    kind: ClassVar[str] = "email"
    Config: ClassVar = EmailConfig
    Secret: ClassVar = EmailSecret

    async def send(self, config: EmailConfig, secret: EmailSecret, message: Message,
                   recipients: list[str], client: httpx.AsyncClient) -> Answer:
        if not recipients:
            return Answer(False, None, "no addresses in the subscription's recipients")
        mail = EmailMessage()
        mail["From"], mail["To"] = config.sender, ", ".join(recipients)
        mail["Subject"] = f"[CityOps] {message.title}"
        mail.set_content(message.body)
        return await asyncio.to_thread(_send, config, secret, mail)
