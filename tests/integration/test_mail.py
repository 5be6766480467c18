"""Email delivery: the outbox folder when no SMTP server is configured, a real SMTP listener
(aiosmtpd) otherwise — plain, STARTTLS with a certificate made for the test, and AUTH — and a
clear ``MailError`` when the server is down or refuses."""
from __future__ import annotations

import ipaddress
import logging
import ssl
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from jinja2 import ChoiceLoader, DictLoader

from app.common import mail
from app.common.mail import MailError
from tests.fixtures_live import free_port

TEMPLATES = {
    "mail/test_note.txt": "Hello {{ name }},\nyour code is {{ code }}.\n",
    "mail/test_note.html": "<p>Hello {{ name }},</p><p>your code is <b>{{ code }}</b>.</p>",
    "mail/test_plain.txt": "Only text for {{ name }}.\n",
}


@pytest.fixture
def mail_templates(app):
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.jinja_env.loader])
    app.jinja_env.cache = {}  # templates loaded through the old loader must not shadow these
    return app


def _self_signed_certificate(folder):
    """A key and a self-signed certificate for 127.0.0.1/localhost, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tessera test SMTP")])
    now = datetime.now(timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class SecureSmtp:
    """A second aiosmtpd listener that offers STARTTLS, requires it, and requires AUTH."""

    USER, PASSWORD = "mailer@example.com", "p@ss:word/9"

    def __init__(self, folder):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert_file, key_file = _self_signed_certificate(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        self.messages, self.sessions = [], []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.sessions.append({"tls": session.ssl is not None,
                                      "authenticated": session.authenticated,
                                      "login": getattr(session.auth_data, "login", None)})
                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.USER.encode()
                  and auth_data.password == self.PASSWORD.encode())
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     tls_context=context, require_starttls=True,
                                     authenticator=authenticator, auth_required=True,
                                     auth_require_tls=True)

    def url(self, user=USER, password=PASSWORD) -> str:
        from urllib.parse import quote

        return f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"


@pytest.fixture
def secure_smtp(tmp_path):
    server = SecureSmtp(tmp_path)
    server.controller.start()
    yield server
    server.controller.stop()


def test_without_smtp_each_message_is_one_eml_file_in_the_outbox(mail_templates, outbox, tmp_path):
    mail.send("ann@example.com", "Your code", "test_note", name="Ann <script>", code="123456")
    mail.send("bob@example.com", "Only text", "test_plain", name="Bob")

    files = sorted((tmp_path / "outbox").glob("*"))
    assert [f.suffix for f in files] == [".eml", ".eml"]
    first, second = outbox()
    assert first["To"] == "ann@example.com" and first["Subject"] == "Your code"
    assert first["From"] == "Tessera <no-reply@tessera.invalid>"
    assert first["Message-ID"] and first["Date"]
    assert "your code is 123456." in first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert second.get_content_type() == "text/plain"
    assert "Only text for Bob." in second.get_content()


def test_with_smtp_url_the_message_reaches_the_smtp_server(mail_templates, app, smtp_server, outbox):
    app.config["SMTP_URL"] = smtp_server.url

    mail.send("carol@example.com", "Sign-in code", "test_note", name="Carol", code="654321")

    received = smtp_server.wait_for("carol@example.com", "Sign-in code")
    assert "your code is 654321." in received.get_body(("plain",)).get_content()
    assert "<b>654321</b>" in received.get_body(("html",)).get_content()
    assert outbox() == []


def test_starttls_and_login_with_the_credentials_from_the_url(mail_templates, app, secure_smtp):
    app.config["SMTP_URL"] = secure_smtp.url()
    app.config["SMTP_CA_FILE"] = str(secure_smtp.cert_file)

    mail.send("dave@example.com", "Invitation", "test_plain", name="Dave")

    assert [m["To"] for m in secure_smtp.messages] == ["dave@example.com"]
    assert secure_smtp.sessions == [{"tls": True, "authenticated": True,
                                     "login": SecureSmtp.USER.encode()}]


def test_untrusted_certificate_is_refused_with_a_clear_error(mail_templates, app, secure_smtp):
    app.config["SMTP_URL"] = secure_smtp.url()
    app.config["SMTP_CA_FILE"] = ""

    with pytest.raises(MailError) as caught:
        mail.send("erin@example.com", "Invitation", "test_plain", name="Erin")

    assert "certificate was not accepted" in caught.value.message
    assert secure_smtp.messages == []


def test_wrong_password_is_a_clear_error(mail_templates, app, secure_smtp):
    app.config["SMTP_URL"] = secure_smtp.url(password="wrong")
    app.config["SMTP_CA_FILE"] = str(secure_smtp.cert_file)

    with pytest.raises(MailError) as caught:
        mail.send("frank@example.com", "Invitation", "test_plain", name="Frank")

    assert "did not accept Tessera's user name or password" in caught.value.message
    assert secure_smtp.messages == []


def test_password_is_never_sent_without_tls(mail_templates, app, smtp_server):
    app.config["SMTP_URL"] = f"smtp://mailer:secret@127.0.0.1:{smtp_server.port}"

    with pytest.raises(MailError) as caught:
        mail.send("gina@example.com", "Invitation", "test_plain", name="Gina")

    assert "will not send it the password" in caught.value.message
    assert smtp_server.messages == []


def test_smtp_server_down_raises_mail_error_and_logs_it(mail_templates, app, caplog):
    port = free_port()  # nothing listens there
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"

    with caplog.at_level(logging.ERROR), pytest.raises(MailError) as caught:
        mail.send("hank@example.com", "Invitation", "test_plain", name="Hank")

    assert f"the mail server (127.0.0.1:{port}) is not reachable" in caught.value.message
    assert any("hank@example.com" in r.getMessage() and "not sent" in r.getMessage()
               for r in caplog.records)


def test_a_request_whose_mail_fails_shows_a_clear_page_not_a_server_error(mail_templates, app, client):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"

    def send_a_mail():
        mail.send("ivy@example.com", "Invitation", "test_plain", name="Ivy")
        return "sent"

    app.add_url_rule("/test-only/send-mail", "test_only_send_mail", send_a_mail)
    response = client.get("/test-only/send-mail")

    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "Email not sent" in page and "is not reachable" in page


def test_unwritable_outbox_raises_mail_error(mail_templates, app, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    app.config["OUTBOX"] = str(blocked)

    with pytest.raises(MailError) as caught:
        mail.send("jack@example.com", "Invitation", "test_plain", name="Jack")

    assert "outbox" in caught.value.message
