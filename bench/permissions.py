"""Benchmark: effective permissions and My devices at 1k and 100k devices on PostgreSQL.

What it does: creates a schema of its own on the PostgreSQL server (``TESSERA_BENCH_POSTGRES_URL``,
default ``postgresql://postgres@127.0.0.1:5432/test``), creates the tables, and for each size
fills one account (devices, groups and memberships loaded with psycopg 3 ``COPY``):

* ``size`` enrolled devices (1% pending, 1% revoked), each in one of 10 "region" device groups
  and in one "rack" group of 100 devices;
* 200 users; the measured technician is in the "Region 0 team" user group (plus two others);
* 20 role assignments, as an account really has them: the technician's team reaches region 0
  (10% of the devices: 100 of 1k, 10k of 100k) under an every-day schedule; others are for
  other teams, inactive, on inactive groups, OnDemand, or a Confirm-access role for Everyone
  on Everything.

Then it times, per size:

* ``effective_permissions``: ``app.assignments.permissions.effective_permissions(member,
  device, now)`` for random devices (half reachable, half not);
* ``my_devices_query``: what ``dashboard.my_devices`` asks the database: the favourites within
  reach (shown first) and the listing (``COUNT`` + the first page by name), both built from
  ``reachable_devices``;
* ``my_devices_view``: the real ``GET /my-devices`` through Flask's test client, rendering
  included;
* the peer, ``naive``: the obvious Python evaluation: load the account's assignments, groups,
  group members and device memberships (and, for My devices, every device) into Python and
  evaluate there.

It prints one JSON document: p50/p95 in milliseconds per size, the 100k/1k p95 ratios (goal:
at most 2x) and the speed-up against the naive peer; and drops its schema at the end.

    .venv/bin/python bench/permissions.py [--repeat 40] [--naive-repeat 3] [--sizes 1000,100000]
"""
from __future__ import annotations

import json
import random
import secrets
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402  (bench/common.py; puts the repository on sys.path)
    PASSWORD,
    arguments,
    bench_app,
    column_defaults,
    copy_rows,
    scratch_schema,
    signed_in_client,
    speedup_p95,
    timing,
)
from sqlalchemy import select, text  # noqa: E402

REGIONS = 10
RACK = 100
USERS = 80


def fill(db, account_id: int, size: int, rng: random.Random) -> dict:
    """Devices, device groups and their members through COPY; returns the ids the bench needs."""
    from app.models import Device, Group

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    device_cols = ["account_id", "hardware_id", "token_hash", "hostname", "os", "enrolment_state", "revoked",
                   "online", "created_at"]
    device_extra = column_defaults(Device.__table__, set(device_cols))
    group_cols = ["account_id", "kind", "name", "description", "active", "directory_ref", "created_at"]
    group_extra = column_defaults(Group.__table__, set(group_cols))
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        rows = []
        for i in range(size):
            roll = rng.random()
            state, revoked = ("pending", False) if roll < 0.01 else ("enrolled", roll < 0.02)
            rows.append([account_id, f"hw-{size}-{i}", secrets.token_hex(32), f"host-{i:06d}",
                         rng.choice(["Ubuntu 24.04", "Windows 11", "macOS 14"]), state, revoked,
                         rng.random() < 0.3, now] + list(device_extra.values()))
        copy_rows(conn, "device", device_cols + list(device_extra), rows)
        groups = [[account_id, "device", f"Region {r}", "", True, "", now] for r in range(REGIONS)]
        groups += [[account_id, "device", f"Rack {k}", "", True, "", now] for k in range(size // RACK)]
        copy_rows(conn, "groups", group_cols + list(group_extra), (g + list(group_extra.values()) for g in groups))
        with conn.cursor() as cur:
            cur.execute("SELECT id, hostname FROM device WHERE account_id = %s ORDER BY hostname", (account_id,))
            devices = cur.fetchall()
            cur.execute("SELECT id, name FROM groups WHERE account_id = %s AND kind = 'device'", (account_id,))
            by_name = {name: gid for gid, name in cur.fetchall()}
        members = []
        for index, (device_id, _) in enumerate(devices):
            members.append([by_name[f"Region {index % REGIONS}"], device_id])
            members.append([by_name[f"Rack {index // RACK}"], device_id])
        copy_rows(conn, "group_device", ["group_id", "device_id"], members)
        conn.commit()
    finally:
        raw.close()
    region0 = [d for i, (d, _) in enumerate(devices) if i % REGIONS == 0]
    others = [d for i, (d, _) in enumerate(devices) if i % REGIONS != 0]
    return {"groups": by_name, "region0": region0, "others": others}


def build_access(db, account, size: int, filled: dict, rng: random.Random):
    """Users, user groups and 20 assignments; returns the technician's membership."""
    from app.models import (Assignment, DeviceFavourite, Group, GroupKind, Membership, Recurrence, Role, RoleType,
                            Schedule, UserType)
    from app.users import services as users

    tech = users.create_user(account, f"tech-{size}@bench.example", PASSWORD, UserType.user)
    staff = [users.create_user(account, f"u{i}-{size}@bench.example", PASSWORD, UserType.user)
             for i in range(USERS)]
    team = Group(account_id=account.id, kind=GroupKind.user, name="Region 0 team", members=[tech] + staff[:20])
    night = Group(account_id=account.id, kind=GroupKind.user, name="Night shift", members=staff[20:60])
    old = Group(account_id=account.id, kind=GroupKind.user, name="Old team", members=[tech], active=False)
    extra = [Group(account_id=account.id, kind=GroupKind.user, name=f"Team {i}",
                   members=staff[60 + i * 10: 70 + i * 10] + ([tech] if i < 2 else [])) for i in range(12)]
    db.session.add_all([team, night, old, *extra])
    support = Role(account_id=account.id, name="Support", type=RoleType.device,
                   permissions=["remote_session", "view_screen", "keyboard_mouse", "clipboard", "chat"],
                   client_types=["browser"])
    viewer = Role(account_id=account.id, name="Viewer", type=RoleType.device, permissions=["view_screen"],
                  client_types=["browser"])
    confirm = db.session.scalar(select(Role).where(Role.account_id == account.id, Role.type == RoleType.confirm))
    ondemand = db.session.scalar(select(Role).where(Role.account_id == account.id, Role.type == RoleType.ondemand))
    every_day = Schedule(account_id=account.id, name="Every day", start_date=date(2020, 1, 1), all_day=True,
                         recurrence=Recurrence.daily, daily_mode="every_n", interval=1, timezone="Europe/Copenhagen",
                         weekdays=[], month_day=1)
    db.session.add_all([support, viewer, every_day])
    db.session.flush()
    group = {name: db.session.get(Group, gid) for name, gid in filled["groups"].items()}
    racks = [g for name, g in group.items() if name.startswith("Rack")]
    assignments = [
        Assignment(account_id=account.id, name="Region 0 support", role=support, user_groups=[team],
                   device_groups=[group["Region 0"]], schedule=every_day),
        Assignment(account_id=account.id, name="Night racks", role=support, user_groups=[night],
                   device_groups=racks[:5]),
        Assignment(account_id=account.id, name="Old team everything", role=support, user_groups=[old],
                   everything=True),
        Assignment(account_id=account.id, name="Paused viewers", role=viewer, everyone=True, everything=True,
                   active=False),
        Assignment(account_id=account.id, name="Confirm everywhere", role=confirm, everyone=True, everything=True),
        Assignment(account_id=account.id, name="OnDemand helpers", role=ondemand, user_groups=[team]),
    ]
    for i, g in enumerate(extra):
        assignments.append(Assignment(account_id=account.id, name=f"Team {i} region", role=viewer, user_groups=[g],
                                      device_groups=[group[f"Region {1 + i % (REGIONS - 1)}"]], active=i >= 2))
    while len(assignments) < 20:
        assignments.append(Assignment(account_id=account.id, name=f"Spare {len(assignments)}", role=viewer,
                                      user_groups=[night], device_groups=[racks[len(assignments) % len(racks)]]))
    db.session.add_all(assignments)
    db.session.flush()
    member = db.session.scalar(select(Membership).where(Membership.user_id == tech.user_id,
                                                        Membership.account_id == account.id))
    # A handful of favourites, one of them out of reach.
    for device_id in rng.sample(filled["region0"], 5) + rng.sample(filled["others"], 1):
        db.session.add(DeviceFavourite(user_id=tech.user_id, device_id=device_id))
    db.session.commit()
    return member


class Naive:
    """The peer: everything of the account into Python, then the rules evaluated there."""

    def __init__(self, db, account_id: int):
        self.db, self.account_id = db, account_id

    def _load(self):
        from app.models import Assignment, Group, Role, Schedule
        from app.models.assignments import assignment_device_group, assignment_user_group
        from app.models.groups import group_device, group_member

        s = self.db.session
        self.groups = {g.id: g for g in s.scalars(select(Group).where(Group.account_id == self.account_id))}
        ids = list(self.groups)
        self.members = {}
        for gid, mid in s.execute(select(group_member.c.group_id, group_member.c.membership_id)
                                  .where(group_member.c.group_id.in_(ids))):
            self.members.setdefault(gid, set()).add(mid)
        self.device_groups = {}
        for gid, did in s.execute(select(group_device.c.group_id, group_device.c.device_id)
                                  .where(group_device.c.group_id.in_(ids))):
            self.device_groups.setdefault(did, set()).add(gid)
        self.assignments = list(s.execute(select(Assignment, Role, Schedule).outerjoin(Role, Assignment.role_id == Role.id)
                                          .outerjoin(Schedule, Assignment.schedule_id == Schedule.id)
                                          .where(Assignment.account_id == self.account_id)))
        self.users_of = {}
        self.devices_of = {}
        for table, target in ((assignment_user_group, self.users_of), (assignment_device_group, self.devices_of)):
            for aid, gid in s.execute(select(table.c.assignment_id, table.c.group_id)):
                target.setdefault(aid, set()).add(gid)

    def _applying(self, member, at):
        from app.assignments.schedule import covers
        from app.models import RoleType

        for a, role, schedule in self.assignments:
            if not a.active or a.disabled_reason or role is None or role.type is not RoleType.device:
                continue
            if not (a.everyone or any(self.groups[g].active and member.id in self.members.get(g, ())
                                      for g in self.users_of.get(a.id, ()))):
                continue
            if covers(schedule, at):
                yield a, role

    def permissions(self, member, device, at) -> set[str]:
        from app.models import EnrolmentState

        self._load()
        if device.revoked or device.enrolment_state is not EnrolmentState.enrolled or not member.enabled:
            return set()
        granted = set()
        for a, role in self._applying(member, at):
            groups = self.devices_of.get(a.id, set())
            if a.everything or any(self.groups[g].active for g in groups & self.device_groups.get(device.id, set())):
                granted |= set(role.permissions)
        return granted

    def my_devices(self, member, at, favourites: set[int]) -> tuple[int, list, list]:
        from app.models import Device, EnrolmentState

        self._load()
        applying = list(self._applying(member, at))
        everything = any(a.everything for a, _ in applying)
        groups = {g for a, _ in applying for g in self.devices_of.get(a.id, ()) if self.groups[g].active}
        devices = self.db.session.execute(select(Device.id, Device.hostname, Device.enrolment_state, Device.revoked)
                                          .where(Device.account_id == self.account_id)).all()
        picked = [d for d in devices if d.enrolment_state is EnrolmentState.enrolled and not d.revoked
                  and (everything or self.device_groups.get(d.id, set()) & groups)]
        picked.sort(key=lambda d: (d.hostname, d.id))
        return len(picked), [d for d in picked if d.id in favourites][:50], picked[:10]


def explain(db, member, filled, my_devices_query, my_device_columns, Listing, MultiDict, size) -> None:
    """EXPLAIN ANALYZE of the permission query and of the My devices page, on stderr."""
    from sqlalchemy.dialects import postgresql

    from app.assignments import permissions
    from app.models import Device, RoleType, utcnow

    def show(title, statement):
        compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        plan = db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        print(f"--- {size}: {title}\n" + "\n".join(plan), file=sys.stderr)

    device_id = filled["region0"][7]
    show("effective_permissions candidates", select(permissions.Assignment.id)
         .join(permissions.Role, permissions.Assignment.role_id == permissions.Role.id)
         .where(permissions._live(member.account_id), permissions.Role.type.in_(permissions.DEVICE_SIDE_TYPES),
                permissions.user_side(member.id), permissions.device_side(device_id)))
    listing = Listing("my-devices", my_devices_query(member, utcnow()), my_device_columns(), MultiDict(),
                      id_column=Device.id, default_sort="name")
    query = my_devices_query(member, utcnow())
    show("my devices count", select(text("count(*)")).select_from(query.subquery()))
    show("my devices page", query.order_by(*listing.order_by()).limit(10))


def main() -> None:
    parser = arguments(__doc__.split("\n\n")[0], repeat=40)
    parser.add_argument("--explain", action="store_true", help="print the PostgreSQL plans to stderr")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]

    from flask import g, request_started
    from werkzeug.datastructures import MultiDict

    from app.assignments.permissions import effective_permissions, reach
    from app.assignments.services import my_device_columns, my_devices_query, my_favourites
    from app.common.listing import Listing
    from app.extensions import db
    from app.models import Device, DeviceFavourite, utcnow
    from app.users import services

    def fresh_request_globals(sender, **extra):
        # The bench holds one app context open, which Flask reuses for each test-client
        # request; a real server gives every request a fresh ``g`` (as tests/conftest.py does).
        g.__dict__.clear()

    with scratch_schema("bench_permissions") as (schema, url):
        report: dict = {"benchmark": "effective permissions and My devices", "database": "postgresql",
                        "schema": schema, "page_rows": 10, "assignments_per_account": 20, "sizes": {}}
        started = time.perf_counter()
        with bench_app(url) as app:
            request_started.connect(fresh_request_globals, app)
            rng = random.Random(20240603)
            worlds = {}
            for size in sizes:
                t0 = time.perf_counter()
                account = services.create_account(f"Bench {size}", f"owner-{size}@bench.example",
                                                  PASSWORD, max_users=USERS + 10, max_devices=size + 10)
                filled = fill(db, account.id, size, rng)
                member = build_access(db, account, size, filled, rng)
                worlds[size] = (account.id, member.id, filled)
                report["sizes"][str(size)] = {"fill_seconds": round(time.perf_counter() - t0, 2)}
            # Steady state, as autovacuum leaves a live database: statistics and the
            # visibility map (index-only scans) are up to date.
            with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text("VACUUM ANALYZE"))

            for size in sizes:
                account_id, member_id, filled = worlds[size]
                db.session.remove()
                from app.models import Membership

                member = db.session.get(Membership, member_id)
                results = report["sizes"][str(size)]
                naive = Naive(db, account_id)
                favourites = set(db.session.scalars(select(DeviceFavourite.device_id)
                                                    .where(DeviceFavourite.user_id == member.user_id)))
                # Warm up (connection, statement caches, the schedule's rrule) before timing.
                for device_id in filled["region0"][:3] + filled["others"][:3]:
                    effective_permissions(member, db.session.get(Device, device_id), utcnow())
                my_favourites(member, utcnow())
                Listing("my-devices", my_devices_query(member, utcnow()), my_device_columns(), MultiDict(),
                        id_column=Device.id, default_sort="name")
                if options.explain:
                    explain(db, member, filled, my_devices_query, my_device_columns, Listing, MultiDict, size)
                # -- effective_permissions on random devices, half reachable
                ids = [rng.choice(filled["region0"] if i % 2 == 0 else filled["others"])
                       for i in range(options.repeat)]
                devices = {d.id: d for d in db.session.scalars(select(Device).where(Device.id.in_(ids)))}
                eff, granted_count = [], 0
                for device_id in ids:
                    now = utcnow()
                    t0 = time.perf_counter()
                    result = effective_permissions(member, devices[device_id], now)
                    eff.append((time.perf_counter() - t0) * 1000)
                    granted_count += bool(result.granted)
                naive_eff, agree = [], True
                for device_id in ids[: options.naive_repeat * 2]:
                    now = utcnow()
                    t0 = time.perf_counter()
                    expected = naive.permissions(member, devices[device_id], now)
                    naive_eff.append((time.perf_counter() - t0) * 1000)
                    agree &= expected == set(effective_permissions(member, devices[device_id], now).keys)
                # -- My devices: the listing query, the page, and the naive peer
                query_times, view_times, naive_times = [], [], []
                total = None
                client = signed_in_client(app, db, member.user, account_id)
                for _ in range(options.repeat):
                    now = utcnow()
                    t0 = time.perf_counter()
                    known = reach(member, now)
                    shown_favourites = my_favourites(member, now, known)
                    listing = Listing("my-devices", my_devices_query(member, now, known), my_device_columns(), MultiDict(),
                                      id_column=Device.id, default_sort="name")
                    query_times.append((time.perf_counter() - t0) * 1000)
                    total = listing.total
                    first_page = [row.Device.id for row in listing.items]
                    favourite_ids = [d.id for d in shown_favourites]
                    t0 = time.perf_counter()
                    response = client.get("/my-devices")
                    view_times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, response.status_code
                    db.session.rollback()
                for _ in range(options.naive_repeat):
                    t0 = time.perf_counter()
                    naive_total, naive_favourites, naive_page = naive.my_devices(member, utcnow(), favourites)
                    naive_times.append((time.perf_counter() - t0) * 1000)
                    db.session.rollback()
                results.update({
                    "devices": size,
                    "reachable_devices": total,
                    "naive_reachable_devices": naive_total,
                    "first_page_matches_naive": (first_page == [d.id for d in naive_page]
                                                 and favourite_ids == [d.id for d in naive_favourites]),
                    "favourites_shown": len(favourite_ids),
                    "effective_permissions": timing(eff),
                    "effective_permissions_granted_share": round(granted_count / len(ids), 2),
                    "effective_permissions_naive": timing(naive_eff),
                    "effective_permissions_agree_with_naive": agree,
                    "my_devices_query": timing(query_times),
                    "my_devices_view": timing(view_times),
                    "my_devices_naive": timing(naive_times),
                    "speedup_p95_vs_naive": {
                        "effective_permissions": speedup_p95(naive_eff, eff),
                        "my_devices_query": speedup_p95(naive_times, query_times),
                    },
                })
    if len(sizes) >= 2:
        small, large = report["sizes"][str(min(sizes))], report["sizes"][str(max(sizes))]
        report["p95_ratio_largest_vs_smallest"] = {
            key: round(large[key]["p95_ms"] / small[key]["p95_ms"], 2)
            for key in ("effective_permissions", "my_devices_query", "my_devices_view")}
        report["goal"] = "p95 ratio <= 2x"
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
