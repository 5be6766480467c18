"""Effective permissions (app/assignments/permissions.py): the union over applying assignments,
every reason an assignment does not apply, OnDemand, My devices' query, and a hypothesis
property test against a naive oracle on random small worlds."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from app.assignments.permissions import (check_permissions, effective_permissions, ondemand_permissions,
                                         reachable_devices)
from app.extensions import db
from app.models import EnrolmentState, GroupKind, RoleType
from tests.integration import access_world as w

UTC = timezone.utc
MONDAY_10_CPH = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)  # 10:00 in Copenhagen
MONDAY_20_CPH = datetime(2024, 6, 3, 18, 0, tzinfo=UTC)  # 20:00 in Copenhagen


def _setup(factory):
    account = factory.account()
    user = factory.user(account, "user")
    member = w.membership_of(user, account)
    return account, user, member


def test_permissions_are_the_union_of_applying_assignments_with_their_grants(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    helpdesk = w.group(account, "Helpdesk", members=[member])
    servers = w.group(account, "Servers", GroupKind.device, devices=[pc])
    viewer = w.role(account, "Viewer", permissions=["view_screen", "chat"], client_types=["browser"])
    files = w.role(account, "Files", permissions=["file_transfer", "view_screen"], client_types=["viewer"])
    w.assignment(account, "A view", viewer, user_groups=[helpdesk], device_groups=[servers])
    w.assignment(account, "B files", files, everyone=True, everything=True)

    result = effective_permissions(member, pc, MONDAY_10_CPH)

    assert result.keys == ("view_screen", "file_transfer", "chat")  # canonical order
    assert [g.assignment for g in result.granted["view_screen"]] == ["A view", "B files"]
    assert [g.role for g in result.granted["file_transfer"]] == ["Files"]
    assert set(result.client_types) == {"browser", "viewer"}
    assert result.allows("chat") and not result.allows("execute_command")
    # A User passed instead of the membership gives the same answer.
    assert effective_permissions(user, pc, MONDAY_10_CPH).keys == result.keys


def test_nothing_is_granted_through_inactive_groups_inactive_or_disabled_assignments(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    role = w.role(account, "Full")
    off_users = w.group(account, "Off users", members=[member], active=False)
    on_users = w.group(account, "On users", members=[member])
    off_devices = w.group(account, "Off devices", GroupKind.device, devices=[pc], active=False)
    w.assignment(account, "inactive user group", role, user_groups=[off_users], everything=True)
    w.assignment(account, "inactive device group", role, user_groups=[on_users], device_groups=[off_devices])
    w.assignment(account, "switched off", role, everyone=True, everything=True, active=False)
    w.assignment(account, "role removed", role, everyone=True, everything=True, disabled_reason="Role removed")

    result = effective_permissions(member, pc, MONDAY_10_CPH)
    assert result.granted == {}

    reasons = {c.assignment.name: c.reasons for c in check_permissions(member, pc, MONDAY_10_CPH).assignments}
    assert reasons["inactive user group"] == ["The user is only in inactive user groups of this assignment."]
    assert reasons["inactive device group"] == ["The device is only in inactive device groups of this assignment."]
    assert reasons["switched off"] == ["The assignment is not active."]
    assert reasons["role removed"] == ["Disabled: Role removed"]


def test_schedule_decides_in_its_own_timezone(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    role = w.role(account, "Full")
    w.assignment(account, "Office", role, everyone=True, everything=True, schedule=w.office_hours(account))

    assert effective_permissions(member, pc, MONDAY_10_CPH).allows("remote_session")
    late = check_permissions(member, pc, MONDAY_20_CPH)
    assert late.permissions.granted == {}
    assert late.assignments[0].reasons == ["Outside its schedule \u201cOffice hours\u201d."]
    assert late.summary == "No assignment grants anything to this user on this device at that time."


def test_pending_revoked_foreign_devices_and_disabled_users_get_nothing_with_the_reason(factory):
    account, user, member = _setup(factory)
    role = w.role(account, "Full")
    w.assignment(account, "All", role, everyone=True, everything=True)
    pending = w.device(account, "new-pc", state=EnrolmentState.pending)
    revoked = w.device(account, "old-pc", revoked=True)
    elsewhere = w.device(factory.account(), "their-pc")

    assert "pending" in effective_permissions(member, pending, MONDAY_10_CPH).refusal
    assert "revoked" in effective_permissions(member, revoked, MONDAY_10_CPH).refusal
    foreign = effective_permissions(member, elsewhere, MONDAY_10_CPH)
    assert foreign.granted == {} and "another account" in foreign.refusal

    ok = w.device(account, "pc")
    member.enabled = False
    db.session.commit()
    disabled = effective_permissions(member, ok, MONDAY_10_CPH)
    assert disabled.granted == {} and disabled.refusal == "The user is disabled in this account."


def test_user_outside_the_groups_and_device_outside_the_groups_are_explained(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    role = w.role(account, "Full")
    others = w.group(account, "Others")
    lab = w.group(account, "Lab", GroupKind.device)
    w.assignment(account, "Lab access", role, user_groups=[others], device_groups=[lab])

    check = check_permissions(member, pc, MONDAY_10_CPH)
    assert check.assignments[0].reasons == ["The user is not in any of its user groups.",
                                            "The device is not in any of its device groups."]
    assert not check.assignments[0].applies


def test_directory_groups_grant_like_local_ones(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    role = w.role(account, "Full")
    ldap = w.group(account, "cn=support", GroupKind.ldap, members=[member])
    w.assignment(account, "Directory", role, user_groups=[ldap], everything=True)
    assert effective_permissions(member, pc, MONDAY_10_CPH).allows("remote_session")


def test_confirm_and_whitelist_roles_that_apply_are_returned_for_the_relay(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    w.assignment(account, "Full", w.role(account, "Full"), everyone=True, everything=True)
    confirm = w.role(account, "Confirm", RoleType.confirm, permissions=[], confirm_on_host=True)
    w.assignment(account, "Needs confirmation", confirm, everyone=True, everything=True)
    white = w.role(account, "Only office", RoleType.whitelist, permissions=[])
    w.assignment(account, "Office apps", white, everyone=True, everything=True, active=False)

    result = effective_permissions(member, pc, MONDAY_10_CPH)
    assert [r.role.name for r in result.confirm] == ["Confirm"]
    assert result.confirm[0].as_dict()["confirm_on_host"] is True
    assert result.whitelist == []  # its assignment is inactive
    assert result.as_dict()["confirm_access_roles"][0]["assignment"] == "Needs confirmation"


def test_ondemand_roles_apply_to_ondemand_sessions_only_and_need_ondemand_enabled(factory):
    account, user, member = _setup(factory)
    pc = w.device(account, "pc-1")
    ondemand = w.role(account, "OnDemand helpers", RoleType.ondemand, permissions=["view_screen", "chat"])
    w.assignment(account, "Support", ondemand, everyone=True)

    assert effective_permissions(member, pc, MONDAY_10_CPH).granted == {}
    assert "not enabled" in ondemand_permissions(member, MONDAY_10_CPH).refusal
    member.ondemand_enabled = True
    db.session.commit()
    assert ondemand_permissions(member, MONDAY_10_CPH).keys == ("view_screen", "chat")
    reasons = check_permissions(member, pc, MONDAY_10_CPH).assignments[0].reasons
    assert reasons == ["Its role is an OnDemand role: it applies to OnDemand sessions, not to devices."]


def test_reachable_devices_are_those_of_applying_assignments_only(factory):
    account, user, member = _setup(factory)
    a, b, c = (w.device(account, f"pc-{n}") for n in "abc")
    w.device(account, "pending", state=EnrolmentState.pending)
    w.device(account, "revoked", revoked=True)
    team = w.group(account, "Team", members=[member])
    ab = w.group(account, "AB", GroupKind.device, devices=[a, b])
    bc_off = w.group(account, "BC", GroupKind.device, devices=[b, c], active=False)
    role = w.role(account, "Full")
    w.assignment(account, "AB", role, user_groups=[team], device_groups=[ab])
    w.assignment(account, "BC", role, user_groups=[team], device_groups=[bc_off])
    w.assignment(account, "Nights", role, everyone=True, everything=True,
                 schedule=w.office_hours(account, "Never now"), active=True)

    def names(at):
        return sorted(d.hostname for d in db.session.scalars(reachable_devices(member, at)))

    assert names(MONDAY_20_CPH) == ["pc-a", "pc-b"]
    # In office hours the Everything assignment applies: every enrolled, unrevoked device.
    assert names(MONDAY_10_CPH) == ["pc-a", "pc-b", "pc-c"]


# ------------------------------------------------------------------------------ property
@st.composite
def worlds(draw):
    n_users, n_devices = 2, 4
    return {
        "user_groups": [(draw(st.booleans()), draw(st.sets(st.integers(0, n_users - 1))))
                        for _ in range(draw(st.integers(0, 3)))],
        "device_groups": [(draw(st.booleans()), draw(st.sets(st.integers(0, n_devices - 1))))
                          for _ in range(draw(st.integers(0, 3)))],
        "assignments": [
            {"active": draw(st.booleans()), "everyone": draw(st.booleans()), "everything": draw(st.booleans()),
             "users": draw(st.sets(st.integers(0, 2))), "devices": draw(st.sets(st.integers(0, 2))),
             "role": draw(st.integers(0, 2)), "scheduled": draw(st.booleans())}
            for _ in range(draw(st.integers(0, 4)))],
        "device_states": [draw(st.sampled_from(["enrolled", "pending", "revoked"])) for _ in range(n_devices)],
        "at": draw(st.sampled_from([MONDAY_10_CPH, MONDAY_20_CPH])),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_effective_permissions_and_reachable_devices_agree_with_a_naive_oracle(factory, world):
    account = factory.account()
    members = [w.membership_of(factory.user(account, "user"), account) for _ in range(2)]
    devices = [w.device(account, f"d{i}", state=EnrolmentState.pending if s == "pending" else EnrolmentState.enrolled,
                        revoked=s == "revoked") for i, s in enumerate(world["device_states"])]
    ugroups = [w.group(account, f"u{i}", members=[members[m] for m in ms], active=on)
               for i, (on, ms) in enumerate(world["user_groups"])]
    dgroups = [w.group(account, f"g{i}", GroupKind.device, devices=[devices[d] for d in ds], active=on)
               for i, (on, ds) in enumerate(world["device_groups"])]
    roles = [w.role(account, "view", permissions=["view_screen"]), w.role(account, "full"),
             w.role(account, "od", RoleType.ondemand, permissions=["chat"])]
    office = w.office_hours(account)
    for i, spec in enumerate(world["assignments"]):
        w.assignment(account, f"a{i}", roles[spec["role"]], active=spec["active"], everyone=spec["everyone"],
                     everything=spec["everything"],
                     user_groups=[ugroups[j] for j in spec["users"] if j < len(ugroups)],
                     device_groups=[dgroups[j] for j in spec["devices"] if j < len(dgroups)],
                     schedule=office if spec["scheduled"] else None)
    at = world["at"]
    for member in members:
        reachable = {d.id for d in db.session.scalars(reachable_devices(member, at))}
        for dev in devices:
            expected = w.naive_permissions(member, dev, at)
            assert set(effective_permissions(member, dev, at).keys) == expected
            assert (dev.id in reachable) == bool(expected)
