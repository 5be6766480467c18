"""The OnDemand agent's command line, its ``tessera-ondemand://`` link and the typed key
(agents/ondemand/options.py), and the permissions a person can allow (agents/ondemand/consent.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from agents.common import protocol as P
from agents.ondemand.consent import consent_mask, describe, offered
from agents.ondemand.options import DEFAULT_NAME, UsageError, check_key, parse_args, parse_link

ENV = {"DISPLAY": ":5"}
LINK = "tessera-ondemand://connect?server=https%3A%2F%2Fsupport.example.com%2Fportal&key=123456789"


@pytest.mark.parametrize("typed", ["123456789", "123 456 789", " 123-456-789 ", "123\u00a0456\u00a0789"])
def test_a_typed_key_may_have_spaces_and_dashes(typed):
    assert check_key(typed) == "123456789"


@pytest.mark.parametrize("typed, says", [
    ("", "Type the 9-digit session key"),
    ("   ", "Type the 9-digit session key"),
    ("123 456 78", "has 9 digits; this has 8"),
    ("1234567890", "has 9 digits; this has 10"),
    ("123 45a 789", "only digits"),
    ("١٢٣٤٥٦٧٨٩", "only digits"),   # Arabic-Indic digits are digits to Python, not to the relay
])
def test_a_mistyped_key_is_explained(typed, says):
    with pytest.raises(UsageError, match=says):
        check_key(typed)


def test_the_link_gives_the_server_and_the_key():
    assert parse_link(LINK) == ("https://support.example.com/portal", "123456789")
    assert parse_link("TESSERA-ONDEMAND://connect/?server=http://127.0.0.1:5000/") == (
        "http://127.0.0.1:5000", None)


@pytest.mark.parametrize("link, says", [
    ("https://support.example.com/?server=x", "not a Tessera OnDemand link"),
    ("tessera-viewer://connect?server=https://a.example", "not a Tessera OnDemand link"),
    ("tessera-ondemand://evil.example?server=https://a.example", "not understood"),
    ("tessera-ondemand://connect/other?server=https://a.example", "not understood"),
    ("tessera-ondemand://connect?key=123456789", "names no server"),
    ("tessera-ondemand://connect?server=javascript:alert(1)&key=123456789", "server cannot be used"),
    ("tessera-ondemand://connect?server=file:///etc/passwd", "server cannot be used"),
    ("tessera-ondemand://connect?server=https://a.example&server=https://b.example", "more than once"),
    ("tessera-ondemand://connect?server=https://a.example&key=12", "has 9 digits"),
])
def test_any_other_link_is_refused_saying_what_is_expected(link, says):
    with pytest.raises(UsageError, match=says):
        parse_link(link)


def test_options_from_the_launcher():
    options = parse_args(["--server", "https://support.example.com/", "--key", "123 456 789",
                          "--account-name", "  Acme   Support ", "--logo",
                          "https://support.example.com/account/3/logo/square"], ENV)
    assert (options.server, options.key, options.display) == (
        "https://support.example.com", "123456789", ":5")
    assert options.account_name == "Acme Support"
    assert options.logo == "https://support.example.com/account/3/logo/square"


def test_without_a_key_the_window_asks_for_it():
    options = parse_args(["--server", "http://127.0.0.1:5000", "--display", ":7"], {})
    assert options.key is None and options.display == ":7" and options.account_name == DEFAULT_NAME


def test_a_link_and_options_must_agree():
    assert parse_args([LINK, "--key", "123456789"], ENV).key == "123456789"
    with pytest.raises(UsageError, match="different keys"):
        parse_args([LINK, "--key", "987654321"], ENV)
    with pytest.raises(UsageError, match="different servers"):
        parse_args([LINK, "--server", "https://other.example"], ENV)


@pytest.mark.parametrize("argv, env, says", [
    ([], ENV, "No server"),
    (["--server", "ftp://x.example"], ENV, "--server"),
    (["--server", "https://x.example"], {}, "No X display"),
    (["--server", "https://x.example", "--display", "nonsense"], ENV, "--display must look like"),
    (["--server", "https://x.example", "--logo", "file:///etc/passwd"], ENV, "--logo must be"),
])
def test_an_unusable_command_line_says_why(argv, env, says):
    with pytest.raises(UsageError, match=says):
        parse_args(argv, env)


def test_the_program_refuses_another_scheme_with_status_2_and_a_sentence():
    done = subprocess.run([sys.executable, "-m", "agents.ondemand", "https://evil.example/connect"],
                          capture_output=True, text=True, timeout=60, env={"DISPLAY": ":5", "PATH": ""})
    assert done.returncode == 2
    assert "not a Tessera OnDemand link" in done.stderr and "tessera-ondemand://connect?" in done.stderr


# --- what can be allowed -------------------------------------------------------------------

def test_only_the_three_ondemand_permissions_are_ever_offered_in_window_order():
    asked = P.permission_mask({"clipboard", "file_transfer", "remote_management", "view_screen",
                               "keyboard_mouse", "remote_session"})
    assert offered(asked) == ("view_screen", "keyboard_mouse", "clipboard")
    assert offered(P.permission_mask({"clipboard"})) == ("clipboard",)
    assert offered(0) == ()


def test_the_consent_never_allows_what_was_not_asked_for():
    asked = P.permission_mask({"view_screen", "clipboard", "file_transfer"})
    assert consent_mask(asked, ["view_screen"]) == P.permission_mask({"view_screen"})
    # Ticked but not asked for (keyboard_mouse), or asked for but not allowable (file_transfer).
    assert consent_mask(asked, ["keyboard_mouse", "file_transfer", "clipboard"]) == \
        P.permission_mask({"clipboard"})
    assert consent_mask(asked, []) == 0


def test_the_banner_names_what_is_allowed():
    assert describe({"clipboard", "view_screen"}) == "View screen, Clipboard"
    assert describe(set()) == "nothing"
