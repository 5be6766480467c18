"""How the Confirm-access roles that apply combine into whom to ask (app.confirm.services.plan):
each role's exceptions waive only that role; the host is asked if any role asks it; the email
groups are the union, sent at once unless every emailing role waits for the host."""
from __future__ import annotations

from app.confirm.services import ConfirmRule, plan


def rule(name="R", on_host=False, groups=(), only_when=False, locked=False, nobody=False):
    return ConfirmRule(name, on_host, bool(groups), tuple(groups), only_when, locked, nobody)


def test_no_roles_means_no_confirmation():
    assert plan([], locked=False, user="ann") is None


def test_a_role_asking_the_host_is_waived_only_by_its_own_exceptions():
    host = rule(on_host=True, locked=True)
    assert plan([host], locked=True, user="ann") is None
    assert plan([host], locked=False, user="ann").on_host
    nobody = rule(on_host=True, nobody=True)
    assert plan([nobody], locked=False, user="") is None
    assert plan([nobody], locked=False, user="ann") is not None
    # Another role without the exception still asks.
    assert plan([host, rule("S", on_host=True)], locked=True, user="ann").roles == ("S",)


def test_an_offline_device_has_no_known_state_so_exceptions_do_not_apply():
    result = plan([rule(on_host=True, locked=True, nobody=True)], locked=None, user=None)
    assert result is not None and result.on_host


def test_email_groups_are_merged_and_sent_at_once_unless_every_role_waits_for_the_host():
    waits = rule("A", on_host=True, groups=(1, 2), only_when=True)
    at_once = rule("B", groups=(2, 3))
    result = plan([waits], locked=False, user="ann")
    assert result.email_group_ids == {1, 2} and not result.email_at_once and result.on_host
    result = plan([waits, at_once], locked=False, user="ann")
    assert result.email_group_ids == {1, 2, 3} and result.email_at_once
    assert result.roles == ("A", "B")


def test_a_role_that_asks_nobody_asks_for_nothing():
    assert plan([rule()], locked=False, user="ann") is None
