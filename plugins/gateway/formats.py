"""What both wire formats (OpenAI chat completions, Anthropic messages) share: names, errors, server-sent events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["openai", "anthropic"]


class BadRequest(ValueError):
    """The client's request is malformed or cannot be translated (400), with a message naming the field."""


@dataclass
class Event:
    """One server-sent event: its name, its data as sent, and the data parsed (None for ``[DONE]``)."""

    name: str | None
    data: str
    payload: Any = field(default=None, compare=False)

    @classmethod
    def of(cls, payload: Any, name: str | None = None) -> Event:
        return cls(name, json.dumps(payload, separators=(",", ":")), payload)

    def encode(self) -> bytes:
        head = f"event: {self.name}\n" if self.name else ""
        return f"{head}data: {self.data.replace(chr(10), chr(10) + 'data: ')}\n\n".encode()


DONE = Event(None, "[DONE]")


def openai_error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def anthropic_error(message: str, kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_event(client: Format, message: str) -> Event:
    """The final event of a stream that failed after its start, in the client's format."""
    if client == "anthropic":
        return Event.of(anthropic_error(message, "api_error"), "error")
    return Event.of(openai_error(message, "upstream_error"), "error")


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
