"""Refusals in the format the client reads: the gateway's OpenAI- and Anthropic-compatible routes answer as
those APIs do (so an SDK raises its own ``AuthenticationError``, ``PermissionDeniedError`` or
``RateLimitError`` with the message), every other route ``{"detail": ...}`` as FastAPI does."""

from __future__ import annotations

from typing import Any

ANTHROPIC_PREFIX = "/gateway/anthropic/"
GATEWAY_PREFIX = "/gateway/"

ANTHROPIC_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
OPENAI_CODES = {401: "invalid_api_key", 403: "permission_denied", 429: "rate_limit_exceeded"}


def error_body(path: str, status: int, detail: str, kind: str | None = None) -> dict[str, Any]:
    """The body of a refusal of ``path``; ``kind`` overrides the error type (``budget_exceeded``)."""
    if path.startswith(ANTHROPIC_PREFIX):
        return {"type": "error", "error": {"type": kind or ANTHROPIC_TYPES.get(status, "api_error"), "message": detail}}
    if path.startswith(GATEWAY_PREFIX):
        code = OPENAI_CODES.get(status)
        error_type = kind or ("requests" if status == 429 else "invalid_request_error")
        return {"error": {"message": detail, "type": error_type, "param": None, "code": kind or code}}
    return {"detail": detail}
