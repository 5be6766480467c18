"""What the PostgreSQL benchmarks in ``bench/`` share: a schema of their own for the run, the
app bound to it, bulk loading with ``COPY``, a signed-in test client, and p50/p95 timings.

Called by ``bench/listing.py`` and ``bench/permissions.py`` (run as scripts, so they import it
as ``common`` with ``bench/`` on ``sys.path``); ``bench/live.py`` imports it for the path and
the key, and ``bench/slow_viewer.py`` takes ``percentile`` from it. Importing it also puts the
repository on ``sys.path`` and sets a throw-away ``TESSERA_SECRET_KEY``, as every benchmark
needs both before it imports ``app``.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TESSERA_SECRET_KEY", "bench-" + secrets.token_hex(8))

from sqlalchemy import create_engine, text  # noqa: E402

POSTGRES_URL = os.environ.get("TESSERA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "Bench-Pass-2024"


def arguments(description: str, repeat: int) -> argparse.ArgumentParser:
    """The options every benchmark takes: how often to time ours and the peer, and the sizes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,100000")
    return parser


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def timing(samples: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(percentile(samples, 95), 2),
            "runs": len(samples)}


def speedup_p95(peer: list[float], ours: list[float]) -> float:
    """How many times faster ours is than the peer at the 95th percentile."""
    return round(percentile(peer, 95) / percentile(ours, 95), 1)


@contextmanager
def scratch_schema(prefix: str):
    """A schema of the run's own on the PostgreSQL server, dropped at the end whatever happens;
    yields its name and a database URL whose connections use it."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield schema, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


@contextmanager
def bench_app(url: str):
    """The app on ``url`` with its tables created, inside an app context; the instance folder is
    temporary. On the way out the pooled connections are closed, so the schema can be dropped."""
    from app import create_app
    from app.config import TestConfig
    from app.extensions import db

    with tempfile.TemporaryDirectory() as instance:
        app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=instance,
                                    OUTBOX=str(Path(instance) / "outbox"), WTF_CSRF_ENABLED=False))
        with app.app_context():
            db.create_all()
            yield app
            db.session.remove()
            db.engine.dispose()


def signed_in_client(app, db, user, account_id: int):
    """A test client with a live server-side session for ``user`` in ``account_id``."""
    from app.models import UserSession

    client = app.test_client()
    sid = secrets.token_urlsafe(32)
    db.session.add(UserSession(id=sid, user_id=user.id, account_id=account_id,
                               session_version=user.session_version))
    db.session.commit()
    with client.session_transaction() as cookie:
        cookie["sid"], cookie["_user_id"], cookie["_fresh"] = sid, str(user.id), True
    return client


def copy_rows(conn, table: str, columns: list[str], rows) -> None:
    """``rows`` into ``table`` through psycopg 3 ``COPY`` on a raw driver connection."""
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def column_defaults(table, given: set[str]) -> dict:
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
            raise SystemExit(f"bench: no value for {table.name}.{column.key}; teach the benchmark's fill()")
    return values
