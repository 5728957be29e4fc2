"""Alembic environment of the security plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.security.counters import usage  # noqa: F401 - registers the table on the metadata
from plugins.security.store import metadata

run_migrations(metadata)
