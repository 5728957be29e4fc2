"""Alembic environment of the jobs plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.jobs.store import metadata

run_migrations(metadata)
