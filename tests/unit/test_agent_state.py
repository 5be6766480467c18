"""The Host agent's configuration (command line, /etc/tessera/agent.conf), its state directory
(device token, hardware id, revocation) and the reconnect backoff."""
from __future__ import annotations

import random
import stat
from pathlib import Path

import pytest

from agents.common.transport import Backoff
from agents.host.__main__ import main, parse_args
from agents.host.state import ConfigError, Credential, StateDir, build_config, read_config_file

ROOT = Path(__file__).resolve().parents[2]


def test_installer_configuration_file_is_read_as_the_installer_writes_it(tmp_path):
    # Exactly what templates/downloads/install-linux.sh's printf produces.
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nportal_url = https://support.example.com/\nenrollment_key = K3Y-123\n")
    config = build_config(config_file=str(conf), state_dir=str(tmp_path / "state"), environ={})
    assert config.server == "https://support.example.com"
    assert config.enrollment_key == "K3Y-123"
    assert config.enroll_url == "https://support.example.com/api/v1/agent/enroll"
    assert config.relay_url == "wss://support.example.com/relay/agent"


def test_installer_template_writes_the_keys_the_agent_reads():
    template = (ROOT / "templates/downloads/install-linux.sh").read_text()
    assert "portal_url = %s\\nenrollment_key = %s" in template
    assert "tessera-agent --config /etc/tessera/agent.conf" in template


def test_plain_key_value_lines_without_a_section_are_accepted(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("# written by hand\nserver=http://10.0.0.5:8080\nenrollment_key=abc\ndisplay=:3\n")
    config = build_config(config_file=str(conf), state_dir=str(tmp_path), environ={})
    assert (config.server, config.enrollment_key, config.display) == ("http://10.0.0.5:8080", "abc", ":3")
    assert config.relay_url == "ws://10.0.0.5:8080/relay/agent"


def test_command_line_wins_over_the_configuration_file(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nportal_url = https://a.example\nenrollment_key = from-file\n")
    config = build_config(server="https://b.example", enroll_key="from-cli", config_file=str(conf),
                          display=":9", state_dir=str(tmp_path), environ={"DISPLAY": ":1"})
    assert (config.server, config.enrollment_key, config.display) == ("https://b.example", "from-cli", ":9")


def test_display_defaults_to_the_environment_then_to_finding_it(tmp_path):
    assert build_config(server="http://h", state_dir=str(tmp_path), environ={"DISPLAY": ":4"}).display == ":4"
    # The installer's systemd unit has no DISPLAY: the agent finds the desktop (xsession.py).
    assert build_config(server="http://h", state_dir=str(tmp_path), environ={}).display == "auto"
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nportal_url = https://a.example\ndisplay = Auto\n")
    assert build_config(config_file=str(conf), state_dir=str(tmp_path),
                        environ={"DISPLAY": ":4"}).display == "auto"
    assert build_config(server="http://h", display="auto", state_dir=str(tmp_path),
                        environ={"DISPLAY": ":4"}).display == "auto"


@pytest.mark.parametrize("server, problem", [
    ("", "no server"),
    ("ftp://host", "http:// or https://"),
    ("support.example.com", "http:// or https://"),
    ("https://host/?x=1", "query or fragment"),
])
def test_unusable_server_addresses_are_refused_with_a_reason(tmp_path, server, problem):
    with pytest.raises(ConfigError, match=problem):
        build_config(server=server, state_dir=str(tmp_path), environ={})


def test_missing_or_broken_configuration_file_says_which_and_why(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        read_config_file(tmp_path / "nope.conf")
    broken = tmp_path / "broken.conf"
    broken.write_text("[other]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"no \[agent\] section"):
        read_config_file(broken)


def test_command_line_without_a_server_exits_with_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["--state-dir", str(tmp_path)]) == 2
    assert "no server" in capsys.readouterr().err


def test_command_line_options_are_those_the_installer_and_docs_use():
    args = parse_args(["--server", "https://s", "--enroll-key", "k", "--state-dir", "/tmp/x",
                       "--display", ":2", "--config", "/etc/tessera/agent.conf"])
    assert (args.server, args.enroll_key, args.state_dir, args.display, args.config) == (
        "https://s", "k", "/tmp/x", ":2", "/etc/tessera/agent.conf")


def test_device_token_is_kept_private_and_survives_a_restart(tmp_path):
    state = StateDir(tmp_path / "state")
    state.save_credential(Credential(42, "s3cret-token", "https://s.example"))
    token_file = tmp_path / "state" / "device-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert StateDir(tmp_path / "state").load_credential() == Credential(42, "s3cret-token", "https://s.example")
    assert not [p for p in (tmp_path / "state").iterdir() if p.name.startswith(".")], "no temp files left"


def test_a_damaged_state_directory_means_no_credential_not_a_crash(tmp_path):
    state = StateDir(tmp_path)
    (tmp_path / "device-token").write_text("tok\n")
    (tmp_path / "device.json").write_text("{not json")
    assert state.load_credential() is None


def test_hardware_id_comes_from_machine_id_hashed_and_is_stable(tmp_path):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    state = StateDir(tmp_path / "state")
    first = state.hardware_id(machine_id)
    assert first == StateDir(tmp_path / "other").hardware_id(machine_id)
    assert "0123456789abcdef" not in first and len(first) == 32
    assert not (tmp_path / "state" / "hardware-id").exists()


def test_without_machine_id_a_generated_hardware_id_is_kept(tmp_path):
    state = StateDir(tmp_path / "state")
    first = state.hardware_id(tmp_path / "missing")
    assert StateDir(tmp_path / "state").hardware_id(tmp_path / "missing") == first
    assert stat.S_IMODE((tmp_path / "state" / "hardware-id").stat().st_mode) == 0o600


def test_revocation_forgets_the_token_and_is_remembered(tmp_path):
    state = StateDir(tmp_path)
    state.save_credential(Credential(1, "tok", "http://s"))
    state.mark_revoked("device revoked")
    assert state.load_credential() is None
    assert StateDir(tmp_path).revoked_reason() == "device revoked"


def test_backoff_doubles_with_jitter_between_one_and_thirty_seconds():
    backoff = Backoff(rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert all(1.0 <= d <= 30.0 for d in delays)
    assert delays[0] == 1.0  # the ceiling starts at 1 s: the first retry is quick
    ceilings = [min(30.0, 2.0 ** i) for i in range(12)]
    assert all(c / 2 <= d <= c or d == 1.0 for d, c in zip(delays, ceilings))
    assert max(delays[6:]) <= 30.0 and min(delays[6:]) >= 15.0  # capped, still jittered
    assert len(set(delays[6:])) > 1


def test_backoff_spreads_many_agents_over_time():
    # After a relay restart, agents at the same failure count must not retry in the same second.
    delays = [Backoff(rng=random.Random(seed), failures=5).next_delay() for seed in range(200)]
    assert 15.0 <= min(delays) and max(delays) <= 30.0
    assert max(delays) - min(delays) > 10.0


def test_backoff_reset_starts_again_at_one_second():
    backoff = Backoff(rng=random.Random(1))
    for _ in range(8):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_slow_retry_waits_near_the_cap():
    backoff = Backoff(rng=random.Random(3))
    assert all(22.5 <= backoff.slow_delay() <= 30.0 for _ in range(50))


def test_power_actions_may_have_a_command_of_their_own_in_the_configuration_file(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nportal_url = https://a.example\n"
                    "lock_command = xscreensaver-command -lock\n"
                    "restart_command = /usr/bin/sudo -n '/sbin/shutdown' -r now\n"
                    "shut_down_command =\n")
    config = build_config(config_file=str(conf), state_dir=str(tmp_path), environ={})
    assert config.power_commands == {"lock": ("xscreensaver-command", "-lock"),
                                     "restart": ("/usr/bin/sudo", "-n", "/sbin/shutdown", "-r", "now")}
    assert build_config(server="https://a.example", state_dir=str(tmp_path), environ={}).power_commands == {}


def test_a_power_command_that_cannot_be_split_is_refused_with_its_name(tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\nportal_url = https://a.example\nlock_command = my-locker 'unclosed\n")
    with pytest.raises(ConfigError, match="lock_command .* cannot be read"):
        build_config(config_file=str(conf), state_dir=str(tmp_path), environ={})
