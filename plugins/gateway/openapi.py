"""The gateway's own answers besides success, declared in the OpenAPI schema.

Invocation routes answer errors in their wire format (OpenAI's ``{"error": {...}}``,
Anthropic's ``{"type": "error", "error": {...}}``); the layers in front of them (body
limits, JSON depth, the database) answer with ``{"detail": ...}``, so a 400 may be either.
"""

from __future__ import annotations

from typing import Any

from .formats import Format

DETAIL = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
OPENAI_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {}},
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}
ANTHROPIC_ERROR = {
    "type": "object",
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "required": ["type", "message"],
        },
    },
    "required": ["type", "error"],
}
INVOCATION_ERRORS = {
    400: (
        "A request that is not valid JSON, lacks a field, or cannot be translated for the provider "
        "(the message names the field)"
    ),
    404: "No such endpoint in this workspace",
    429: "The provider's rate limit, with its Retry-After",
    500: "A stored secret cannot be decrypted with this server's key-encryption key",
    502: "Every model failed, or the provider answered something the gateway cannot pass on",
    504: "The provider did not answer in time",
}
STREAM = (
    "The answer; with `stream: true`, server-sent events in the client's format, "
    "ending with the format's terminal event"
)


def invocation_responses(client: Format) -> dict[int | str, dict[str, Any]]:
    """Success (JSON, or SSE when streamed) and the errors of an invocation route, in ``client``'s format."""
    schema = {"anyOf": [OPENAI_ERROR if client == "openai" else ANTHROPIC_ERROR, DETAIL]}
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": STREAM,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
    }
    for status, description in INVOCATION_ERRORS.items():
        responses[status] = {"description": description, "content": {"application/json": {"schema": schema}}}
    return responses


def conflict(description: str) -> dict[int | str, dict[str, Any]]:
    return {409: {"description": description, "content": {"application/json": {"schema": DETAIL}}}}


BATCH_ERRORS = {
    400: "A request the route refuses (the message names the field or the JSONL line)",
    404: "No such file or batch in this workspace",
    413: "The uploaded file is over the 100 MiB limit",
    503: "Batches need the jobs plugin, which is not enabled; or the database is unavailable",
}


def batch_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors of a ``/gateway/v1/files`` or ``/batches`` route: OpenAI's error object (or the core's ``detail``)."""
    schema = {"anyOf": [OPENAI_ERROR, DETAIL]}
    return {
        status: {"description": BATCH_ERRORS[status], "content": {"application/json": {"schema": schema}}}
        for status in statuses
    }
