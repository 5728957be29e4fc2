"""Alembic environment of the security plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.security.store import metadata

run_migrations(metadata)
