"""Benchmark: the Users listing at 1k and 100k members on PostgreSQL.

What it does: creates a schema of its own on the PostgreSQL server (``TESSERA_BENCH_POSTGRES_URL``,
default ``postgresql://postgres@127.0.0.1:5432/test``), creates the tables, fills one account
with 1,000 members and another with 100,000 (users + memberships + a few live sessions, loaded
with psycopg 3 ``COPY``), and times a filtered, sorted page for a few typical filter/sort
combinations three ways:

* ``query``: the listing component alone (``COUNT`` + one page with ``LIMIT``/``OFFSET``), the
  way ``app/common/listing.py`` runs it;
* ``view``: the real ``GET /users/?...`` through Flask's test client, signed in as the
  account's administrator (rendering included);
* ``naive``: the peer: load every member of the account into Python, then filter, sort and
  slice there.

It prints one JSON document (p50/p95 in milliseconds per size, scenario and method, the
matched row count, and p95 speed-ups against the naive peer) and drops its schema at the end.
Takes about a minute on the 2-core machine (the naive peer is most of it). psycopg 3 prepares
a statement after five runs, so later runs use the server's plan cache, as the Portal does.

    .venv/bin/python bench/listing.py [--repeat 15] [--naive-repeat 3] [--sizes 1000,100000]
"""
from __future__ import annotations

import json
import random
import secrets
import sys
import time
from datetime import datetime, timedelta, timezone
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

SCENARIOS = {
    # name: query string of the Users page
    "type_and_ondemand_by_created_desc": "f.type=user&f.ondemand=yes&sort=created&dir=desc",
    "name_contains_by_username": "f.name=an&sort=username",
    "status_offline_by_last_seen_desc": "f.status=offline&sort=last_seen&dir=desc",
    "created_range_by_name_page_5": "f.created.from=2024-01-01&f.created.to=2024-12-31&sort=name&page=5",
}

FIRST = ["Ana", "Bo", "Carla", "Dan", "Eva", "Frank", "Gina", "Hans", "Ines", "Jon", "Kara",
         "Liam", "Mona", "Nils", "Olga", "Pavel", "Rana", "Sven", "Tanja", "Umar"]
LAST = ["Andersen", "Berg", "Costa", "Dahl", "Evans", "Fischer", "Garcia", "Horvat", "Ivanov",
        "Jensen", "Kowalski", "Larsen", "Moreau", "Nagy", "Olsen", "Popescu", "Rossi", "Silva"]


def fill(db, account_id: int, count: int, prefix: str, rng: random.Random) -> None:
    """``count`` users and memberships for ``account_id``, through COPY on the raw connection."""
    from app.models import Membership, User, UserSession

    now = datetime.now(timezone.utc).replace(tzinfo=None)  # UTCDateTime stores naive UTC
    user_cols = ["username", "email", "first_name", "last_name", "password_hash", "source",
                 "mfa_enabled", "primary_account_id", "last_seen_at", "created_at"]
    user_extra = column_defaults(User.__table__, set(user_cols))
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        rows = []
        for i in range(count):
            seen = now - timedelta(minutes=rng.randint(10, 60 * 24 * 90)) if rng.random() < 0.6 else None
            pending = rng.random() < 0.03
            rows.append([f"{prefix}{i:06d}@bench.example", f"{prefix}{i:06d}@bench.example",
                         rng.choice(FIRST), rng.choice(LAST), None if pending else "x", "local",
                         rng.random() < 0.2, account_id, seen,
                         now - timedelta(days=rng.randint(0, 900), seconds=rng.randint(0, 86399))]
                        + list(user_extra.values()))
        copy_rows(conn, "user", user_cols + list(user_extra), rows)
        with conn.cursor() as cur:
            cur.execute('SELECT id, created_at FROM "user" WHERE username LIKE %s ORDER BY id',
                        (f"{prefix}%",))
            users = cur.fetchall()
        member_cols = ["user_id", "account_id", "type", "enabled", "ondemand_enabled", "created_at"]
        member_extra = column_defaults(Membership.__table__, set(member_cols))
        types = ["user"] * 16 + ["group_manager"] * 3 + ["administrator"]
        copy_rows(conn, "membership", member_cols + list(member_extra), (
            [uid, account_id, rng.choice(types), rng.random() < 0.95, rng.random() < 0.3, created]
            + list(member_extra.values())
            for uid, created in users))
        # About 1% signed in right now.
        online = rng.sample(users, max(1, count // 100))
        session_cols = ["id", "user_id", "account_id", "session_version", "created_at", "last_seen_at"]
        session_extra = column_defaults(UserSession.__table__, set(session_cols))
        copy_rows(conn, "user_session", session_cols + list(session_extra), (
            [secrets.token_hex(16), uid, account_id, 1, now, now] + list(session_extra.values())
            for uid, _ in online))
        with conn.cursor() as cur:
            cur.execute('UPDATE "user" SET last_seen_at = %s, online_since = %s WHERE id = ANY(%s)',
                        (now, now - timedelta(minutes=30), [uid for uid, _ in online]))
        conn.commit()
    finally:
        raw.close()


def naive_page(db, account_id: int, args: dict, now: datetime) -> tuple[int, list]:
    """The peer: every member of the account into Python, then filter, sort and slice."""
    from app.models import Membership, User, UserSession

    cutoff = now - timedelta(minutes=5)
    rows = db.session.execute(
        select(Membership.id, User.id, User.first_name, User.last_name, User.username,
               User.password_hash, User.source, User.last_seen_at, Membership.type,
               Membership.enabled, Membership.ondemand_enabled, Membership.created_at)
        .join(User, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
    ).all()
    live = set(db.session.scalars(select(UserSession.user_id).where(UserSession.last_seen_at >= cutoff)))

    def status(r):
        if not r.enabled:
            return "disabled"
        if r.password_hash is None and r.source == "local":
            return "pending"
        if r.last_seen_at and r.last_seen_at >= cutoff and r[1] in live:
            return "online"
        return "offline"

    picked = []
    for r in rows:
        name = f"{r.first_name} {r.last_name}"
        if "f.type" in args and r.type.name != args["f.type"]:
            continue
        if "f.ondemand" in args and r.ondemand_enabled != (args["f.ondemand"] == "yes"):
            continue
        if "f.name" in args and args["f.name"].lower() not in name.lower():
            continue
        if "f.status" in args and status(r) != args["f.status"]:
            continue
        if "f.created.from" in args and r.created_at.date().isoformat() < args["f.created.from"]:
            continue
        if "f.created.to" in args and r.created_at.date().isoformat() > args["f.created.to"]:
            continue
        picked.append(r)
    key = {"created": lambda r: r.created_at, "username": lambda r: r.username,
           "name": lambda r: f"{r.first_name} {r.last_name}",
           "last_seen": lambda r: r.last_seen_at or datetime.min.replace(tzinfo=timezone.utc)}[args["sort"]]
    picked.sort(key=lambda r: (key(r), r[0]), reverse=args.get("dir") == "desc")
    page = int(args.get("page", 1))
    return len(picked), picked[(page - 1) * 10: page * 10]


def main() -> None:
    options = arguments(__doc__.split("\n\n")[0], repeat=15).parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]

    from urllib.parse import parse_qsl

    from werkzeug.datastructures import MultiDict

    from app.common.listing import Listing
    from app.extensions import db
    from app.models import Membership, UserType, utcnow
    from app.users import services

    with scratch_schema("bench_listing") as (schema, url):
        report: dict = {"benchmark": "users listing", "database": "postgresql", "schema": schema,
                        "page_rows": 10, "scenarios": SCENARIOS, "sizes": {}}
        started = time.perf_counter()
        with bench_app(url) as app:
            rng = random.Random(20240601)
            accounts = {}
            for size in sizes:
                t0 = time.perf_counter()
                account = services.create_account(f"Bench {size}", f"owner-{size}@bench.example",
                                                  PASSWORD, max_users=size + 10)
                admin = services.create_user(account, f"admin-{size}@bench.example", PASSWORD,
                                             UserType.administrator).user
                fill(db, account.id, size, f"b{size}-", rng)
                accounts[size] = (account.id, admin)
                report["sizes"][str(size)] = {"fill_seconds": round(time.perf_counter() - t0, 2)}
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()

            for size in sizes:
                account_id, admin = accounts[size]
                client = signed_in_client(app, db, admin, account_id)
                results = report["sizes"][str(size)]
                for name, query in SCENARIOS.items():
                    args = dict(parse_qsl(query))
                    listing_times, view_times, naive_times = [], [], []
                    matched = None
                    for _ in range(options.repeat):
                        now = utcnow()  # as the view does: "online" moves with the clock
                        t0 = time.perf_counter()
                        listing = Listing("users", services.users_query(account_id, now),
                                          services.user_columns(now), MultiDict(args),
                                          id_column=Membership.id, default_sort="name")
                        listing_times.append((time.perf_counter() - t0) * 1000)
                        matched = listing.total
                        db.session.rollback()
                        t0 = time.perf_counter()
                        response = client.get(f"/users/?{query}")
                        view_times.append((time.perf_counter() - t0) * 1000)
                        assert response.status_code == 200, response.status_code
                    for _ in range(options.naive_repeat):
                        t0 = time.perf_counter()
                        naive_total, _page = naive_page(db, account_id, args, now)
                        naive_times.append((time.perf_counter() - t0) * 1000)
                        db.session.rollback()
                    results[name] = {"matched_rows": matched, "naive_matched_rows": naive_total,
                                     "query": timing(listing_times), "view": timing(view_times),
                                     "naive": timing(naive_times),
                                     "query_speedup_p95_vs_naive": speedup_p95(naive_times, listing_times)}
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
