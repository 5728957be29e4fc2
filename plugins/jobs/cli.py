"""``python -m core jobs worker``: run jobs outside the API server, on any host that reaches the database."""

from __future__ import annotations

import asyncio
import logging

import click

from core.cli import load_host, startup_errors

from .service import run_worker


@click.group("jobs")
def jobs() -> None:
    """Background jobs."""


@jobs.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs run at once, each in its own subprocess. [default: PLUGHOST_JOBS_WORKERS, at least 1]",
)
@startup_errors
def worker(concurrency: int | None) -> None:
    """Claim and run jobs from the shared queue until SIGINT/SIGTERM (running jobs get a grace period)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = load_host()
    asyncio.run(run_worker(host, concurrency or max(1, host.plugin_settings("jobs").workers)))
