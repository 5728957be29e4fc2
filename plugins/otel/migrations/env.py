"""Alembic environment of the otel plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.otel.tables import metadata

run_migrations(metadata)
