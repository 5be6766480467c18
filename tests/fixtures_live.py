"""Fixtures with real moving parts: an SMTP listener (aiosmtpd), a live ``tessera run`` server
in a subprocess, and headless Debian Chromium driven by Playwright."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.relay_harness import free_port, stop_process, wait_until_up as _wait_until_up  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")


class SmtpSink:
    """A real SMTP server on loopback that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def wait_for(self, to: str, subject_part: str = "", timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages):
                if to.lower() in str(message["To"]).lower() and subject_part in str(message["Subject"]):
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no mail to {to} with {subject_part!r} in the subject within {timeout}s")


@pytest.fixture
def smtp_server():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


class LiveServer:
    def __init__(self, url, instance, env, process):
        self.url, self.instance, self.env, self.process = url, instance, env, process

    def tessera(self, *args: str) -> str:
        """Run a ``tessera`` CLI command against this server's database."""
        done = subprocess.run([sys.executable, "-m", "app", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def live_server(tmp_path, smtp_server, database_url_for_live):
    """``tessera db upgrade`` + ``tessera demo`` + ``tessera run`` on a free port, mail going to
    the SMTP listener. Yields a :class:`LiveServer`."""
    port = free_port()
    instance = tmp_path / "instance"
    env = {**os.environ,
           "TESSERA_INSTANCE": str(instance),
           "TESSERA_DATABASE_URL": database_url_for_live,
           "TESSERA_SMTP_URL": smtp_server.url,
           "TESSERA_BASE_URL": f"http://127.0.0.1:{port}",
           "TESSERA_ARGON2_TIME_COST": "1",
           "TESSERA_ARGON2_MEMORY_COST": "1024"}
    for args in (("db", "upgrade"), ("demo",)):
        done = subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "app", "run", "--port", str(port)],
                               env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        server = LiveServer(url, instance, env, process)
        server.smtp = smtp_server
        yield server
    finally:
        stop_process(process)
        log.close()


@pytest.fixture
def database_url_for_live(tmp_path):
    """A database of its own for each live server: SQLite file, or a fresh PostgreSQL schema."""
    if os.environ.get("TESSERA_TEST_DATABASE") == "postgres":
        from tests.conftest import _postgres_schema_url
        from sqlalchemy import text

        engine, schema, url = _postgres_schema_url()
        yield url
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    else:
        yield f"sqlite:///{tmp_path / 'live.db'}"


@pytest.fixture(scope="session")
def _playwright():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser(_playwright, request, tmp_path):
    """A fresh browser context and page; a screenshot is kept when the test fails."""
    context = _playwright.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        out = ROOT / "test-artifacts"
        out.mkdir(exist_ok=True)
        page.screenshot(path=str(out / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


# --- Xvfb (the Host agent's tests) -----------------------------------------------------------


@pytest.fixture
def xvfb(monkeypatch):
    """``Xvfb :N -screen 0 1280x800x24`` on a free display (``tests/x11_harness.start_xvfb``),
    with DISPLAY set for the test."""
    from tests.x11_harness import start_xvfb

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian: apt install xvfb; scripts/install-system-deps)")
    server = start_xvfb("1280x800x24")
    monkeypatch.setenv("DISPLAY", server.display)
    try:
        yield server
    finally:
        server.stop()
