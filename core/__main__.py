"""``python -m core``."""

from .cli import main

main()
