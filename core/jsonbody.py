"""JSON request bodies with a nesting limit, checked in O(n) before anything is parsed.

``json.loads`` recurses once per level, so ``[`` x 100,000 raises ``RecursionError``,
and a document just under the interpreter's limit still breaks every recursive
consumer after it (validators, encoders, protobuf's ``ParseDict``). The check here
looks only at brackets outside strings, with bytes methods that run at C speed:

1. escaped backslashes and quotes are dropped, so every remaining ``"`` delimits a string;
2. every other stretch (outside strings) keeps only its brackets, ``{}`` as ``[]``;
3. each pass removes every innermost ``[]`` pair, so the passes needed to empty the
   brackets are the nesting depth; a pass that removes nothing leaves unbalanced
   brackets, whose unmatched openers still count.

At most ``max_depth + 1`` passes run, over a string that shrinks, so the cost is O(n).
Plugins that parse JSON themselves call :func:`loads`; FastAPI's own body parsing is
covered by :mod:`core.limits`, which runs :func:`check_depth` on every JSON request body.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting accepted (objects and arrays), as System.Text.Json and Json.NET default to."""

_BRACKETS = {ord("{"): ord("["), ord("}"): ord("]"), ord("["): ord("["), ord("]"): ord("]")}
_KEEP_BRACKETS = bytes(_BRACKETS.get(byte, byte) for byte in range(256))
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _BRACKETS)


class JSONBodyError(ValueError):
    """The body is not JSON this server accepts; the message says why, for a 400."""


class JSONTooDeep(JSONBodyError):
    """The body nests objects or arrays deeper than the limit."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"the JSON body nests objects or arrays deeper than {max_depth} levels; flatten it")
        self.max_depth = max_depth


def check_depth(data: bytes | bytearray | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JSONTooDeep` when ``data`` nests deeper than ``max_depth``; O(len(data))."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # not enough brackets to be too deep, wherever they are
    outside = raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2]
    brackets = b"".join(outside).translate(_KEEP_BRACKETS, _NOT_BRACKETS)
    depth = 0
    while brackets and depth <= max_depth:
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):  # unbalanced: what is left is "]]]...[[[": count the openers
            depth += reduced.count(b"[")
            break
        brackets, depth = reduced, depth + 1
    if depth > max_depth:
        raise JSONTooDeep(max_depth)


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` as JSON after checking its depth; :class:`JSONBodyError` (a ``ValueError``)
    with a message fit for a 400 when it is too deep, not UTF-8, or not JSON.

    Parsing holds the GIL, so a thread does not keep the event loop free while it runs:
    keep bodies small (the core's JSON body limit does) rather than moving them off the loop.
    """
    check_depth(data, max_depth)
    try:
        return json.loads(data)
    except UnicodeDecodeError as error:
        raise JSONBodyError(f"the body is not UTF-8 text: {error.reason} at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise JSONBodyError(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:  # unreachable after check_depth with a sane max_depth; never a 500 all the same
        raise JSONTooDeep(max_depth) from None
