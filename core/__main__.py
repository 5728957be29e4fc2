"""``python -m core``."""

from . import startup

startup.prepare()  # before the imports below (FastAPI, SQLAlchemy, the plugins)

from .cli import main  # noqa: E402

main()
