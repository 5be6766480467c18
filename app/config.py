"""Configuration, read from ``TESSERA_*`` environment variables.

``create_app()`` picks :class:`Config` by default and :class:`TestConfig` for the test suite.
The secret key is generated once and kept in the instance folder when it is not given.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = ROOT / "instance"


def instance_path() -> Path:
    return Path(os.environ.get("TESSERA_INSTANCE", DEFAULT_INSTANCE)).resolve()


def _secret_key(folder: Path) -> str:
    given = os.environ.get("TESSERA_SECRET_KEY")
    if given:
        return given
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


class Config:
    def __init__(self) -> None:
        folder = instance_path()
        self.INSTANCE_PATH = str(folder)
        self.SECRET_KEY = _secret_key(folder)
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "TESSERA_DATABASE_URL", f"sqlite:///{folder / 'tessera.db'}"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.BASE_URL = os.environ.get("TESSERA_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.SMTP_URL = os.environ.get("TESSERA_SMTP_URL", "")
        # A CA bundle to trust for the SMTP server's certificate (a private CA); system CAs if unset.
        self.SMTP_CA_FILE = os.environ.get("TESSERA_SMTP_CA_FILE", "")
        self.SMTP_TIMEOUT = float(os.environ.get("TESSERA_SMTP_TIMEOUT", "20"))
        self.MAIL_FROM = os.environ.get("TESSERA_MAIL_FROM", "Tessera <no-reply@tessera.invalid>")
        self.OUTBOX = os.environ.get("TESSERA_OUTBOX", str(folder / "outbox"))
        # How many reverse proxies in front of Tessera set X-Forwarded-For/Proto (0 = none).
        self.PROXY_HOPS = int(os.environ.get("TESSERA_PROXY_HOPS", "0"))
        self.REDIS_URL = os.environ.get("TESSERA_REDIS_URL", "")
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.RATELIMIT_HEADERS_ENABLED = True
        # Sign-in throttling (app/auth/throttle.py): failed passwords and codes per username and
        # per client address, and forgot-password requests. Windows of minutes: limits always
        # expire, so nobody is locked out for good.
        env = os.environ.get
        self.SIGNIN_LIMIT_PER_USER = env("TESSERA_SIGNIN_LIMIT_PER_USER", "10 per 15 minutes")
        self.SIGNIN_LIMIT_PER_ADDRESS = env("TESSERA_SIGNIN_LIMIT_PER_ADDRESS", "30 per 15 minutes")
        self.SIGNIN_CODE_SEND_LIMIT = env("TESSERA_SIGNIN_CODE_SEND_LIMIT", "5 per 15 minutes")
        self.FORGOT_LIMIT_PER_USER = env("TESSERA_FORGOT_LIMIT_PER_USER", "3 per 15 minutes")
        self.FORGOT_LIMIT_PER_ADDRESS = env("TESSERA_FORGOT_LIMIT_PER_ADDRESS", "10 per 15 minutes")
        # Before the limit answers 429, failures slow down: after SIGNIN_SLOWDOWN_AFTER failures
        # each answer waits SIGNIN_SLOWDOWN_SECONDS, doubling, at most SIGNIN_SLOWDOWN_MAX.
        self.SIGNIN_SLOWDOWN_AFTER = int(env("TESSERA_SIGNIN_SLOWDOWN_AFTER", "3"))
        self.SIGNIN_SLOWDOWN_SECONDS = float(env("TESSERA_SIGNIN_SLOWDOWN_SECONDS", "0.5"))
        self.SIGNIN_SLOWDOWN_MAX = float(env("TESSERA_SIGNIN_SLOWDOWN_MAX", "5"))
        # OnDemand keys (app/ondemand/throttle.py): every key typed on the public page or
        # presented by an OnDemand agent counts, per client address and across all addresses.
        # With 10^9 keys, a handful live, and these limits, guessing one takes centuries.
        self.ONDEMAND_KEY_LIMIT_PER_ADDRESS = env("TESSERA_ONDEMAND_KEY_LIMIT_PER_ADDRESS", "20 per 10 minutes")
        self.ONDEMAND_KEY_LIMIT_GLOBAL = env("TESSERA_ONDEMAND_KEY_LIMIT_GLOBAL", "600 per hour")
        # The oldest tessera-ondemand the relay accepts; older ones are told to download again.
        self.ONDEMAND_MIN_AGENT_VERSION = env("TESSERA_ONDEMAND_MIN_AGENT_VERSION", "0.1.0")
        # Seconds the OnDemand consent window waits for the person at the computer, and how
        # often the relay drops sessions waiting over an hour and keys unused for 24 hours.
        self.ONDEMAND_CONSENT_TIMEOUT = int(env("TESSERA_ONDEMAND_CONSENT_TIMEOUT", "120"))
        self.ONDEMAND_CHECK_EVERY = float(env("TESSERA_ONDEMAND_CHECK_EVERY", "30"))
        # Agent enrolment (POST /api/v1/agent/enroll): attempts per client address.
        self.AGENT_ENROLL_LIMIT = env("TESSERA_AGENT_ENROLL_LIMIT", "30 per minute")
        # The Linux installer installs the agent wheel this Portal builds and serves
        # (app/downloads/agent_wheel.py). Set this only to make it pip-install something else
        # instead: a wheel's URL, or a requirement on an index the devices trust.
        self.AGENT_PIP_SPEC = env("TESSERA_AGENT_PIP_SPEC", "")
        # The relay (docs/protocol.md): a PING to every peer this often, and a peer that sends
        # nothing (not even a PONG) for this long is closed with 4011.
        self.RELAY_PING_EVERY = float(env("TESSERA_RELAY_PING_EVERY", "25"))
        self.RELAY_IDLE_TIMEOUT = float(env("TESSERA_RELAY_IDLE_TIMEOUT", "75"))
        # Confirm access (app/relay/confirm.py): seconds the prompt on the host waits for an
        # answer, and seconds an emailed confirmation link may still be answered.
        self.CONFIRM_TIMEOUT = int(env("TESSERA_CONFIRM_TIMEOUT", "30"))
        self.CONFIRM_EMAIL_TIMEOUT = float(env("TESSERA_CONFIRM_EMAIL_TIMEOUT", "600"))
        secure = self.BASE_URL.startswith("https://")
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = secure
        self.SESSION_COOKIE_NAME = "tessera_session"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SECURE = secure
        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.MAX_CONTENT_LENGTH = 2 * 1024 * 1024
        self.AUDIT_RETENTION_DAYS = int(os.environ.get("TESSERA_AUDIT_RETENTION_DAYS", "183"))
        self.DEMO_PASSWORD = os.environ.get("TESSERA_DEMO_PASSWORD", "Demo-Pass-2024")
        # argon2 cost: the library defaults in production, cheaper in tests.
        self.ARGON2_TIME_COST = int(os.environ.get("TESSERA_ARGON2_TIME_COST", "3"))
        self.ARGON2_MEMORY_COST = int(os.environ.get("TESSERA_ARGON2_MEMORY_COST", "65536"))
        self.TESTING = False


class TestConfig(Config):
    __test__ = False  # not a pytest test class, whatever the name says
    def __init__(self, **overrides) -> None:
        super().__init__()
        self.TESTING = True
        self.SQLALCHEMY_DATABASE_URI = overrides.pop("SQLALCHEMY_DATABASE_URI", "sqlite://")
        self.ARGON2_TIME_COST = 1
        self.ARGON2_MEMORY_COST = 1024
        self.SERVER_NAME = None
        for key, value in overrides.items():
            setattr(self, key, value)
