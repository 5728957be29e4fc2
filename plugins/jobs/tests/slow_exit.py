"""A job module whose interpreter teardown is slow: an exit handler that sleeps a minute."""

from __future__ import annotations

import atexit
import time

atexit.register(time.sleep, 60)
