"""The Host agent's configuration and the state it keeps on disk between runs.

``__main__`` builds an :class:`AgentConfig` from the command line and the optional
``/etc/tessera/agent.conf`` (written by the Linux installer, ``templates/downloads/
install-linux.sh``); ``agent.Agent`` keeps its device credential in a :class:`StateDir`.

The state directory holds:

``device-token``  the device credential from enrolment (mode 600: it is a password)
``device.json``   the device id and the server it was enrolled with (re-enrol on a new server)
``hardware-id``   a generated hardware id, only where ``/etc/machine-id`` is missing
``revoked``       written when the relay says the device is revoked: the agent then stops, and
                  does not enrol itself again on its next start (enrolling again with the same
                  hardware id would bring a revoked device back; an administrator removes this
                  file on purpose when that is wanted)
``xauthority``    with ``display = auto``: the cookie of the display found, copied for the
                  agent's own X connections (``xsession.adopt``; mode 600; absent when the
                  display needs no cookie)
"""
from __future__ import annotations

import configparser
import hashlib
import json
import os
import shlex
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MACHINE_ID = Path("/etc/machine-id")
AUTO = "auto"   # the display: find it (agents/host/xsession.py)
SYSTEM_STATE_DIR = Path("/var/lib/tessera-agent")


class ConfigError(ValueError):
    """The command line or the configuration file cannot be used; the message says why."""


@dataclass(frozen=True)
class AgentConfig:
    server: str              # the Portal's base URL, e.g. https://support.example.com
    enrollment_key: str      # may be empty once the device holds a token
    state_dir: Path
    display: str             # ":N", or "auto": find the desktop (agents/host/xsession.py)
    hardware_id: str = ""    # empty: derived from /etc/machine-id (tests set one per agent)
    # agent.conf's <action>_command settings (log_out, lock, restart, shut_down): the command
    # line, split as a shell would but run without one, that performs it instead of the
    # built-in one (agents/host/power.py)
    power_commands: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def enroll_url(self) -> str:
        return self.server + "/api/v1/agent/enroll"

    @property
    def relay_url(self) -> str:
        """The agent endpoint of the relay, on the same host as the Portal (ws:// or wss://)."""
        return websocket_url(self.server, "/relay/agent")


def websocket_url(server: str, path: str) -> str:
    """``path`` on the Portal at ``server``, as a websocket address: https -> wss, http -> ws
    (the Host agent's ``/relay/agent``, the OnDemand agent's ``/relay/ondemand``)."""
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + path, "", ""))


# Accepted spellings in agent.conf: the installer writes portal_url; ``server`` mirrors the
# command line option.
_SERVER_KEYS = ("server", "portal_url")
_KEY_KEYS = ("enrollment_key", "enroll_key")
# The power actions agent.conf may give a command of their own (``lock_command = ...``).
POWER_COMMAND_ACTIONS = ("log_out", "lock", "restart", "shut_down")


def read_config_file(path: Path) -> dict[str, str]:
    """``key = value`` lines, under an ``[agent]`` section or none at all; ``#`` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    if not any(line.strip().startswith("[") for line in text.splitlines()):
        text = "[agent]\n" + text
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"the configuration file {path} is not valid: {exc}") from None
    if not parser.has_section("agent"):
        raise ConfigError(f"the configuration file {path} has no [agent] section")
    return {k: v.strip() for k, v in parser.items("agent")}


def normalise_server(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"the server must be an http:// or https:// address, not {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"the server address must not have a query or fragment: {url!r}")
    return url


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return SYSTEM_STATE_DIR
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tessera-agent"


def build_config(*, server: str | None = None, enroll_key: str | None = None,
                 state_dir: str | None = None, display: str | None = None,
                 config_file: str | None = None, hardware_id: str | None = None,
                 environ: dict[str, str] | None = None) -> AgentConfig:
    """The command line wins over the configuration file, which wins over the environment.
    Without a display anywhere (a systemd service has no ``$DISPLAY``) the display is
    ``auto``: the agent finds the desktop's display and its Xauthority itself."""
    environ = os.environ if environ is None else environ
    from_file = read_config_file(Path(config_file)) if config_file else {}

    def pick(given, keys):
        if given:
            return given
        for key in keys:
            if from_file.get(key):
                return from_file[key]
        return ""

    server = pick(server, _SERVER_KEYS)
    if not server:
        raise ConfigError("no server: pass --server URL or set portal_url in the configuration file")
    state = pick(state_dir, ("state_dir",))
    shown = (pick(display, ("display",)) or environ.get("DISPLAY") or AUTO).strip()
    power_commands = {}
    for action in POWER_COMMAND_ACTIONS:
        line = from_file.get(f"{action}_command", "")
        try:
            words = tuple(shlex.split(line))
        except ValueError as exc:
            raise ConfigError(f"{action}_command in {config_file} cannot be read: {exc}") from None
        if words:
            power_commands[action] = words
    if shown.lower() == AUTO:
        shown = AUTO
    return AgentConfig(
        server=normalise_server(server),
        enrollment_key=pick(enroll_key, _KEY_KEYS),
        state_dir=Path(state) if state else default_state_dir(),
        display=shown,
        hardware_id=pick(hardware_id, ("hardware_id",)),
        power_commands=power_commands,
    )


@dataclass(frozen=True)
class Credential:
    device_id: int
    token: str
    server: str


class StateDir:
    """Reads and writes the files described in the module docstring. Secrets are written
    atomically and private (a crash never leaves half a token, nobody else can read it)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)

    def _write_private(self, name: str, data: str) -> None:
        self.ensure()
        final = self.path / name
        temp = self.path / f".{name}.{uuid.uuid4().hex}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    # --- hardware id ---------------------------------------------------------------------

    def hardware_id(self, machine_id_file: Path = MACHINE_ID) -> str:
        """A stable id for this machine, the same for every agent start. Derived from
        ``/etc/machine-id`` (hashed with an application prefix, as systemd recommends, so the
        raw machine id never leaves the machine); else generated once and kept here."""
        try:
            machine_id = machine_id_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            machine_id = ""
        if machine_id:
            return hashlib.sha256(f"tessera-agent:{machine_id}".encode()).hexdigest()[:32]
        kept = self.path / "hardware-id"
        try:
            value = kept.read_text(encoding="ascii").strip()
            if value:
                return value
        except (OSError, UnicodeDecodeError):
            pass
        value = uuid.uuid4().hex
        self._write_private("hardware-id", value + "\n")
        return value

    # --- the device credential -----------------------------------------------------------

    def load_credential(self) -> Credential | None:
        try:
            token = (self.path / "device-token").read_text(encoding="utf-8").strip()
            meta = json.loads((self.path / "device.json").read_text(encoding="utf-8"))
            device_id, server = int(meta["device_id"]), str(meta["server"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not token:
            return None
        return Credential(device_id, token, server)

    def save_credential(self, credential: Credential) -> None:
        self._write_private("device-token", credential.token + "\n")
        self._write_private("device.json", json.dumps(
            {"device_id": credential.device_id, "server": credential.server}) + "\n")

    def forget_credential(self) -> None:
        for name in ("device-token", "device.json"):
            (self.path / name).unlink(missing_ok=True)

    # --- revocation ----------------------------------------------------------------------

    def mark_revoked(self, reason: str) -> None:
        self._write_private("revoked", reason.strip() + "\n")
        self.forget_credential()

    def revoked_reason(self) -> str | None:
        try:
            return (self.path / "revoked").read_text(encoding="utf-8").strip() or "revoked"
        except OSError:
            return None
