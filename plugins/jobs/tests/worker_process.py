"""``python -m core jobs worker`` as a separate process, with the test job types registered.

Usage: ``python -m plugins.jobs.tests.worker_process DATABASE_URL DATA_DIR CONCURRENCY``.
It runs the same :func:`plugins.jobs.service.run_worker` the CLI command runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from core.factory import build_host
from core.settings import CoreSettings
from plugins.jobs.service import run_worker

from . import jobtypes
from .conftest import FAST


def main(database_url: str, data_dir: str, concurrency: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(process)d %(levelname)s %(message)s")
    settings = CoreSettings(database_url=database_url, data_dir=data_dir, plugins=("jobs",))
    host = build_host(settings, given={"testjobs": jobtypes}, overrides={"jobs": FAST})
    asyncio.run(run_worker(host, int(concurrency)))


if __name__ == "__main__":
    main(*sys.argv[1:])
