"""Outgoing email: SMTP when ``TESSERA_SMTP_URL`` is set, otherwise one RFC 822 ``.eml`` file
per message in the outbox folder (``TESSERA_OUTBOX``).

Used for invites, sign-in codes, password resets and, later, OnDemand links and access
confirmations. Callers use :func:`send`::

    mail.send(user.email, "Your sign-in code", "sign_in_code", user=user, code=code)

It renders ``templates/mail/<template>.txt`` and, when it exists, ``<template>.html`` as the
HTML alternative.

SMTP (``smtp://user:password@host:port``, ``smtps://`` for TLS from the first byte):

* STARTTLS is used whenever the server offers it; the certificate is checked against the
  system's CAs, or against ``TESSERA_SMTP_CA_FILE`` (config ``SMTP_CA_FILE``) for a private CA.
* The user name and password from the URL (percent-encoded) are used to log in, and only over
  TLS: a server that offers no STARTTLS never sees the password.

Failures: every delivery problem (server down or refusing, TLS or login failure, a full disk for
the outbox) is logged and raised as :class:`MailError`. It is a ``TesseraError`` (HTTP 503), so
a view that lets it through shows a clear "email not sent" page and the request's database
changes are rolled back; a view that has already committed the change the mail is about should
catch it and ``flash(err.message, "error")`` instead. ``send`` never fails silently.
"""
from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app
from jinja2 import TemplateNotFound

from app.errors import TesseraError


class MailError(TesseraError):
    """An email could not be delivered (or written to the outbox). ``message`` is safe to show
    to the user; the technical reason is in ``reason`` and in the log."""

    status = 503
    title = "Email not sent"

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    sender = current_app.config["MAIL_FROM"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tessera.invalid"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def send(to: str, subject: str, template: str, **context) -> None:
    """Render ``templates/mail/<template>.txt`` (and ``.html`` when present) and deliver it.

    Raises :class:`MailError` when it cannot be delivered.
    """
    # Straight from the Jinja environment: a mail must not depend on the page shell's context
    # processors (current user, account), and it is also sent outside requests (CLI, jobs).
    env = current_app.jinja_env
    text = env.get_template(f"mail/{template}.txt").render(**context)
    try:
        html_template = env.get_template(f"mail/{template}.html")
    except TemplateNotFound:  # the HTML part is optional
        html = None
    else:
        html = html_template.render(**context)
    deliver(build_message(to, subject, text, html))


def deliver(message: EmailMessage) -> None:
    """Send a built message through SMTP or write it to the outbox; raises :class:`MailError`."""
    url = current_app.config.get("SMTP_URL")
    try:
        if url:
            _send_smtp(url, message)
        else:
            _write_outbox(Path(current_app.config["OUTBOX"]), message)
    except MailError as err:
        current_app.logger.error("email to %s (%r) not sent: %s", message["To"], message["Subject"],
                                 err.reason or err.message)
        raise
    current_app.logger.info("email to %s (%r) %s", message["To"], message["Subject"],
                            "sent" if url else "written to the outbox")


def _tls_context() -> ssl.SSLContext:
    ca_file = current_app.config.get("SMTP_CA_FILE") or None
    return ssl.create_default_context(cafile=ca_file)


def _send_smtp(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise MailError("Email is not configured correctly: TESSERA_SMTP_URL must start with "
                        "smtp:// or smtps://.", f"bad scheme {parts.scheme!r}")
    host = parts.hostname or "localhost"
    timeout = float(current_app.config.get("SMTP_TIMEOUT", 20))
    where = f"{host}:{parts.port or (465 if parts.scheme == 'smtps' else 25)}"
    unreachable = (f"The email could not be sent: the mail server ({where}) is not reachable. "
                   "Try again later, or ask your administrator to check the mail settings.")
    try:
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=timeout, context=_tls_context())
        else:
            client = smtplib.SMTP(host, parts.port or 25, timeout=timeout)
    except (OSError, smtplib.SMTPException) as err:
        raise MailError(unreachable, f"connect to {where}: {err}") from err
    try:
        with client:
            client.ehlo()
            secure = parts.scheme == "smtps"
            if not secure and client.has_extn("starttls"):
                client.starttls(context=_tls_context())
                client.ehlo()
                secure = True
            if parts.username:
                if not secure:
                    raise MailError(
                        "The email could not be sent: the mail server does not offer an encrypted "
                        "connection, so Tessera will not send it the password.",
                        f"{where} offers no STARTTLS; refusing to log in over plain text")
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except MailError:
        raise
    except ssl.SSLError as err:
        raise MailError("The email could not be sent: the mail server's certificate was not "
                        "accepted.", f"TLS with {where}: {err}") from err
    except smtplib.SMTPAuthenticationError as err:
        raise MailError("The email could not be sent: the mail server did not accept Tessera's "
                        "user name or password.", f"login at {where}: {err}") from err
    except smtplib.SMTPNotSupportedError as err:
        raise MailError("The email could not be sent: the mail server does not accept a user "
                        "name and password.", f"{where}: {err}") from err
    except smtplib.SMTPRecipientsRefused as err:
        raise MailError(f"The email could not be sent: the mail server refused the address "
                        f"{message['To']}.", f"recipients refused by {where}: {err}") from err
    except smtplib.SMTPServerDisconnected as err:
        raise MailError(unreachable, f"{where} disconnected: {err}") from err
    except smtplib.SMTPException as err:
        raise MailError("The email could not be sent: the mail server refused it. Try again "
                        "later, or ask your administrator to check the mail settings.",
                        f"{where}: {err}") from err
    except OSError as err:  # refused, reset, timed out
        raise MailError(unreachable, f"{where}: {err}") from err


def _write_outbox(folder: Path, message: EmailMessage) -> None:
    # Written under a temporary name and renamed, so a reader never sees half a message.
    name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(bytes(message))
        tmp.rename(folder / name)
    except OSError as err:
        raise MailError("The email could not be written to the outbox folder. Ask your "
                        "administrator to check TESSERA_OUTBOX.", f"outbox {folder}: {err}") from err
