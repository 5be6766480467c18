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

import argparse
import io
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TESSERA_SECRET_KEY", "bench-" + secrets.token_hex(8))

from sqlalchemy import create_engine, select, text  # noqa: E402

POSTGRES_URL = os.environ.get("TESSERA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

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


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timing(samples: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(percentile(samples, 95), 2),
            "runs": len(samples)}


def _copy(conn, table: str, columns: list[str], rows) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def _defaults(table, given: set[str]) -> dict:
    """Scalar Python-side defaults of the columns the bench does not set itself, so columns
    other features add later do not break the COPY."""
    values = {}
    for column in table.columns:
        if column.key in given or column.primary_key:
            continue
        default = column.default
        if default is not None and getattr(default, "is_scalar", False):
            values[column.key] = default.arg
        elif default is not None and getattr(default, "is_callable", False):
            values[column.key] = default.arg(None)
        elif not column.nullable and column.server_default is None:
            raise SystemExit(f"bench: no value for {table.name}.{column.key}; teach bench/listing.py")
    return values


def fill(db, account_id: int, count: int, prefix: str, rng: random.Random) -> None:
    """``count`` users and memberships for ``account_id``, through COPY on the raw connection."""
    from app.models import Membership, User, UserSession

    now = datetime.now(timezone.utc).replace(tzinfo=None)  # UTCDateTime stores naive UTC
    user_cols = ["username", "email", "first_name", "last_name", "password_hash", "source",
                 "mfa_enabled", "primary_account_id", "last_seen_at", "created_at"]
    user_extra = _defaults(User.__table__, set(user_cols))
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
        _copy(conn, "user", user_cols + list(user_extra), rows)
        with conn.cursor() as cur:
            cur.execute('SELECT id, created_at FROM "user" WHERE username LIKE %s ORDER BY id',
                        (f"{prefix}%",))
            users = cur.fetchall()
        member_cols = ["user_id", "account_id", "type", "enabled", "ondemand_enabled", "created_at"]
        member_extra = _defaults(Membership.__table__, set(member_cols))
        types = ["user"] * 16 + ["group_manager"] * 3 + ["administrator"]
        _copy(conn, "membership", member_cols + list(member_extra), (
            [uid, account_id, rng.choice(types), rng.random() < 0.95, rng.random() < 0.3, created]
            + list(member_extra.values())
            for uid, created in users))
        # About 1% signed in right now.
        online = rng.sample(users, max(1, count // 100))
        session_cols = ["id", "user_id", "account_id", "session_version", "created_at", "last_seen_at"]
        session_extra = _defaults(UserSession.__table__, set(session_cols))
        _copy(conn, "user_session", session_cols + list(session_extra), (
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,100000")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]

    from urllib.parse import parse_qsl

    from werkzeug.datastructures import MultiDict

    from app import create_app
    from app.common.listing import Listing
    from app.config import TestConfig
    from app.extensions import db
    from app.models import Membership, UserSession, UserType, utcnow
    from app.users import services

    schema = f"bench_listing_{os.getpid()}_{secrets.token_hex(3)}"
    admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    report: dict = {"benchmark": "users listing", "database": "postgresql", "schema": schema,
                    "page_rows": 10, "scenarios": SCENARIOS, "sizes": {}}
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as instance:
            app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance,
                                        OUTBOX=str(Path(instance) / "outbox"), WTF_CSRF_ENABLED=False))
            with app.app_context():
                db.create_all()
                rng = random.Random(20240601)
                accounts = {}
                for size in sizes:
                    t0 = time.perf_counter()
                    account = services.create_account(f"Bench {size}", f"owner-{size}@bench.example",
                                                      "Bench-Pass-2024", max_users=size + 10)
                    admin = services.create_user(account, f"admin-{size}@bench.example", "Bench-Pass-2024",
                                                 UserType.administrator).user
                    fill(db, account.id, size, f"b{size}-", rng)
                    accounts[size] = (account.id, admin)
                    report["sizes"][str(size)] = {"fill_seconds": round(time.perf_counter() - t0, 2)}
                with db.engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()

                for size in sizes:
                    account_id, admin = accounts[size]
                    client = app.test_client()
                    sid = secrets.token_urlsafe(32)
                    db.session.add(UserSession(id=sid, user_id=admin.id, account_id=account_id,
                                               session_version=admin.session_version))
                    db.session.commit()
                    with client.session_transaction() as cookie:
                        cookie["sid"], cookie["_user_id"], cookie["_fresh"] = sid, str(admin.id), True
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
                                         "query_speedup_p95_vs_naive": round(
                                             percentile(naive_times, 95) / percentile(listing_times, 95), 1)}
                db.session.remove()
                db.engine.dispose()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
