"""``python -m core``, and the ``plughost`` command (``core.__main__:main``): the process is prepared
(:mod:`core.startup`) before the imports below (FastAPI, SQLAlchemy, the plugins)."""

from . import startup

startup.prepare()

from .cli import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    main()
