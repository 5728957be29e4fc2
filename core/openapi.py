"""The error answers the core gives on plugin routes, declared in the OpenAPI schema once for all.

Plugins declare the answers only they give (409 for a conflict, 415, ...) with
FastAPI's ``responses=``; the core adds, where the operation does not declare them:

- ``413`` to every operation with a request body or a body limit of its own
  (:mod:`core.limits`);
- ``404`` to every operation with a path parameter (the resource it names is not there);
- to every plugin operation: ``400`` (a request the route cannot read or refuses: invalid
  or too deeply nested JSON, :mod:`core.validation`; a bad workspace header; a value
  out of the store's range), and ``503`` with ``Retry-After`` (the database is
  unavailable, :mod:`core.unavailable`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .limits import MAX_BODY_BYTES, MAX_BODY_SETTING

ERROR_SCHEMA = "Error"
ERROR = {
    "title": ERROR_SCHEMA,
    "type": "object",
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "What is wrong: a message, or a list of problems with their location",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        }
    },
    "required": ["detail"],
}

BAD_REQUEST = (
    "The request cannot be read or is refused: invalid or too deeply nested JSON, or a value the route refuses"
)
TOO_LARGE = (
    "The request body is over the route's limit (PLUGHOST_MAX_BODY_BYTES, or PLUGHOST_MAX_JSON_BODY_BYTES for JSON)"
)
NOT_FOUND = "Nothing is found at the given path parameters"
UNAVAILABLE = "The database is unavailable (`detail` says why, `cause` names it); retry after `Retry-After` seconds"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def with_error_responses(schema: dict[str, Any], *, core_paths: Collection[str] = ()) -> dict[str, Any]:
    """Add the core's error answers to ``schema`` (in place; adding twice changes nothing)."""
    schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = ERROR
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if MAX_BODY_BYTES in operation:
                own = (
                    f"The request body is over this route's limit of {operation[MAX_BODY_BYTES]} bytes "
                    f"({operation.get(MAX_BODY_SETTING)})"
                )
                responses.setdefault("413", _error(own))
            elif "requestBody" in operation:
                responses.setdefault("413", _error(TOO_LARGE))
            if any(parameter.get("in") == "path" for parameter in operation.get("parameters", ())):
                responses.setdefault("404", _error(NOT_FOUND))
            if path not in core_paths:
                responses.setdefault("400", _error(BAD_REQUEST))
                unavailable = responses.setdefault("503", _error(UNAVAILABLE))
                unavailable.setdefault(
                    "headers", {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
                )
    return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
    }
