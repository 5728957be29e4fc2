"""The app's handler for request validation errors: an honest status, no secrets, no echoed body.

The status rule, for every native route:

- **400** when the request cannot be read as sent: invalid JSON, JSON nested too deep
  (:mod:`core.limits`), a body that is not UTF-8;
- **422** when it reads but does not match the route's declared parameters or body
  (FastAPI's ``RequestValidationError``: a missing field, a wrong type, a value out of
  its declared range);
- **400** also for checks a route makes itself that its declaration cannot express
  (plugins raise these).

The answer lists each problem as ``{"type", "loc", "msg", "input"?}``. ``input`` is never
given for a secret field (a pydantic ``SecretStr``/``SecretBytes``, or a name such as
``api_key``, ``token``, ``password``, ``secret``, ``authorization``), is cut to
:data:`EXCERPT_CHARS` characters for a string, and is left out for an object or array,
so the whole body is never echoed.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretBytes, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse

EXCERPT_CHARS = 64
"""Longest excerpt of a string input echoed in a validation error."""

SECRET_NAME = re.compile(r"(?i)(api[_-]?key|^key$|[_-]key$|token|passw(or)?d|secret|authorization|credential|cookie)")
"""Field names whose input is never echoed."""

MALFORMED = frozenset({"json_invalid"})
"""Error types that mean the body could not be read at all: 400 rather than 422."""


async def answer_validation_error(request: Request, error: Exception) -> JSONResponse:
    """400 or 422 (see the module docstring) with every problem, redacted."""
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    body_type = _body_annotation(request)
    detail = [_redacted(problem, body_type) for problem in problems]
    status = 400 if any(problem.get("type") in MALFORMED for problem in problems) else 422
    return JSONResponse({"detail": detail}, status_code=status)


def _redacted(problem: dict[str, Any], body_type: Any) -> dict[str, Any]:
    loc = tuple(problem.get("loc", ()))
    shown: dict[str, Any] = {
        "type": problem.get("type"),
        "loc": list(loc),
        "msg": excerpt(str(problem.get("msg", "")), 300),
    }
    if "input" in problem and not _is_secret(loc, body_type):
        value = problem["input"]
        if value is None or isinstance(value, (bool, float)) or (isinstance(value, int) and abs(value) < 10**18):
            shown["input"] = value
        elif isinstance(value, (str, bytes, bytearray)):
            text = value if isinstance(value, str) else bytes(value[: EXCERPT_CHARS * 4]).decode("utf-8", "replace")
            shown["input"] = excerpt(text)
    return shown


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was when cut."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _is_secret(loc: Sequence[Any], body_type: Any) -> bool:
    if any(isinstance(part, str) and SECRET_NAME.search(part) for part in loc):
        return True
    if not loc or loc[0] != "body" or body_type is None:
        return False
    annotation = body_type
    for part in loc[1:]:
        annotation = _field_type(annotation, part)
        if annotation is None:
            return False
    return any(_unwrapped(annotation) is secret for secret in (SecretStr, SecretBytes))


def _body_annotation(request: Request) -> Any:
    """The declared type of the route's body, when it has one."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return None if body_field is None else body_field.field_info.annotation


def _field_type(annotation: Any, part: Any) -> Any:
    """The type one step down ``annotation`` at ``part`` (a field name or an index), or ``None``."""
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrapped(annotation: Any) -> Any:
    """``X`` for ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
