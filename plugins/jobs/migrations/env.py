"""Alembic environment of the jobs plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.jobs.schedules import schedules  # noqa: F401 - registers the table on the metadata
from plugins.jobs.store import metadata

run_migrations(metadata)
