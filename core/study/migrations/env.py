"""Alembic environment for the study database.

The app runs migrations itself on open (``core.study.store.upgrade``), handing over its
connection through ``config.attributes["connection"]``; developers can also run
``alembic -c core/study/migrations/alembic.ini -x url=sqlite:///x.db revision --autogenerate``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from core.study.store import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_engine(url)
        with engine.begin() as conn:
            run_with(conn)
        engine.dispose()
