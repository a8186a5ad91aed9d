"""The store: durable SQLite settings, migrations that match the models, URLs and clear errors."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from core.errors import StudyStateError
from core.study.store import Base, database_url, default_cache_dir, default_database_path, open_store


def test_sqlite_runs_in_wal_with_full_sync(tmp_path):
    with open_store(tmp_path / "s.db") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: fsync at every commit
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert store.cache_dir == tmp_path / "s-renditions"


def test_migrations_build_exactly_the_models(tmp_path):
    with open_store(tmp_path / "m.db") as store, store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert head == "0004"
    with open_store(tmp_path / "m.db") as again, again.engine.connect() as conn:  # reopening: no-op
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_a_newer_schema_is_refused(tmp_path):
    with open_store(tmp_path / "n.db") as store, store.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StudyStateError, match="newer than this version"):
        open_store(tmp_path / "n.db")


def test_urls_and_defaults(tmp_path):
    assert database_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert database_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert database_url(None).endswith("/r2c-review/studies.db")
    assert default_database_path().name == "studies.db"
    assert default_cache_dir("postgresql+psycopg://u@h/db").name == "renditions"


def test_unusable_database_is_one_clear_error(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StudyStateError, match="cannot open the study database"):
        open_store(tmp_path / "junk.db")
    with pytest.raises(StudyStateError, match="cannot use this database URL"):
        open_store("nosuchdialect://x/y")
