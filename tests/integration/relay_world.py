"""A real relay to test against: the ``relay_server`` fixture around
``tests/relay_harness.py`` (``tessera run`` in a subprocess on its own database, set-up of
accounts, technicians, permissions and devices, signing in over HTTP, programmatic agents and
viewers speaking docs/protocol.md over real websockets).

Used by tests/integration/test_relay*.py (``relay_server`` is module-scoped: one server per
test module; every test makes its own account so tests do not see each other's data).
"""
from __future__ import annotations

import pytest

# The harness itself has no pytest in it (the benchmarks use it too); re-exported here for the
# tests that import from this module.
from tests.relay_harness import (  # noqa: F401
    PASSWORD,
    EnrolledDevice,
    FakeAgent,
    RelayServer,
    Technician,
    Viewer,
    close_code,
    noise,
    relay_server_process,
    send_expecting_close,
    wait_for,
)


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory):
    """``tessera run`` on a free port with a database of its own (SQLite file, or a fresh
    PostgreSQL schema with TESSERA_TEST_DATABASE=postgres)."""
    yield from start_relay_server(tmp_path_factory)


def start_relay_server(tmp_path_factory, **extra_env):
    """The generator behind ``relay_server``; ``extra_env`` adds TESSERA_* settings."""
    with relay_server_process(tmp_path_factory.mktemp("relay"), **extra_env) as server:
        yield server
