"""Alembic environment of the gateway plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.gateway.store import metadata

run_migrations(metadata)
