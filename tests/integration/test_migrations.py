"""The Alembic migrations build exactly the schema the models describe, on SQLite and
PostgreSQL: `tessera db upgrade` on an empty database, then autogenerate finds nothing to do."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect

from app import create_app
from app.config import TestConfig
from app.extensions import db


def test_upgrade_from_empty_matches_models(database_url_for_live, tmp_path):
    app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=database_url_for_live,
                                INSTANCE_PATH=str(tmp_path / "instance")))
    with app.app_context():
        upgrade()
        engine = create_engine(database_url_for_live)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            tables = set(inspect(conn).get_table_names())
        engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"
    assert {"account", "user", "membership", "audit_event"} <= tables
