"""Alembic environment: runs on the connection the store hands over.

There is no alembic.ini; ``bot.tickets.db.alembic_config`` builds the
configuration and passes an open connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from bot.tickets.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    from bot.settings import get_settings
    from bot.tickets.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or get_settings().database_url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
