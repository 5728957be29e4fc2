"""Alembic environment of the assistant plugin: run by ``core.database.migrate`` at start-up."""

from core.database import run_migrations
from plugins.assistant.store import metadata

run_migrations(metadata)
