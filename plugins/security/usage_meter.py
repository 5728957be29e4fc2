"""The tokens a gateway answer reports, read as it passes (never holding it back): a JSON answer's ``usage``,
or, in a stream, the ``usage`` of its events (OpenAI's last chunk; Anthropic's ``message_start`` and
``message_delta``). Both formats' names are read: ``prompt_tokens``/``completion_tokens`` and
``input_tokens``/``output_tokens``."""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_ANSWER = 4 * 1024 * 1024
"""A unary answer larger than this is not read for its usage (it counts no tokens)."""


class UsageMeter:
    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self.model: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self._pending = b""
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if self.streamed:
            lines = (self._pending + chunk).split(b"\n")
            self._pending = lines.pop()
            for line in lines:
                if line.startswith(b"data:") and b"usage" in line:
                    self._read(line[5:])
            return
        self._size += len(chunk)
        self._pending = self._pending + chunk if self._size <= MAX_JSON_ANSWER else b""

    def finish(self) -> None:
        if not self.streamed and self._pending:
            self._read(self._pending)
        self._pending = b""

    def _read(self, data: bytes) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        nested = event.get("message")
        message: dict[str, Any] = nested if isinstance(nested, dict) else event
        if isinstance(message.get("model"), str):
            self.model = message["model"]
        usage = message.get("usage") or event.get("usage")
        if not isinstance(usage, dict):
            return
        self.input_tokens = max(self.input_tokens, _count(usage, "prompt_tokens", "input_tokens"))
        self.output_tokens = max(self.output_tokens, _count(usage, "completion_tokens", "output_tokens"))


def _count(usage: dict[str, Any], *names: str) -> int:
    return max((value for name in names if isinstance(value := usage.get(name), int)), default=0)
