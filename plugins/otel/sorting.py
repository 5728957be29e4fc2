"""The orders of the trace list (``GET /api/otel/traces?sort=``) and the page tokens that continue them.

Each order is a key of :data:`SORT_KEYS` (an expression on the summary row, each backed by an
index ``(workspace, expression, trace_id)`` on both stores), ascending (``duration``) or descending
(``-duration``), with the trace id as the tie-breaker in the same direction, so an order is total and
a page token (the sort, the last row's value and trace id) names exactly where the next page starts.
A token carries its sort: one made for another order is refused, never misread.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, func, literal, literal_column, tuple_
from sqlalchemy.sql import ColumnElement

from .tables import TOTAL_TOKENS, traces

SORT_VALUE = "sort_value"
"""The label of the order's expression among a listed row's columns (see :class:`Order`)."""

SORT_KEYS: dict[str, ColumnElement[Any]] = {
    "start_time": traces.c.start_ns,
    "duration": traces.c.duration_ns,
    "tokens": TOTAL_TOKENS,
    "spans": traces.c.span_count,
    "errors": traces.c.error_count,
    "cost": func.coalesce(traces.c.cost_usd, literal_column("-1")),  # unpriced as -1; as indexed: a literal
}
"""Sort key to the summary expression it orders by (an index of each is in migration 0008)."""

DEFAULT_SORT = "-start_time"
SORTS = tuple(f"{sign}{key}" for key in SORT_KEYS for sign in ("-", ""))
"""Every value ``sort`` takes: a key, descending with a leading ``-``."""


@dataclass(frozen=True)
class Order:
    """One order of the list: a key of :data:`SORT_KEYS` and a direction."""

    name: str
    """As ``sort`` spells it: ``duration`` or ``-duration``."""

    @classmethod
    def parse(cls, sort: str) -> Order:
        """The order ``sort`` names; ``ValueError`` saying which values are allowed for any other."""
        if sort not in SORTS:
            raise ValueError(f"sort {sort[:64]!r} is not one of: {', '.join(SORTS)} (a leading '-' sorts descending)")
        return cls(sort)

    @property
    def descending(self) -> bool:
        return self.name.startswith("-")

    @property
    def expression(self) -> ColumnElement[Any]:
        return SORT_KEYS[self.name.lstrip("-")]

    def order_by(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        if self.descending:
            return self.expression.desc(), traces.c.trace_id.desc()
        return self.expression.asc(), traces.c.trace_id.asc()

    def after(self, token: str) -> ColumnElement[bool]:
        """The rows after the one ``token`` names: a row value, and the same bound on the expression alone
        (SQLite seeks an index on an expression by that, not by the row value; PostgreSQL by either)."""
        value, trace_id = self._decode(token)
        expression, bound = self.expression, literal(value, self.expression.type)
        position, after = tuple_(expression, traces.c.trace_id), tuple_(bound, literal(trace_id))
        if self.descending:
            return and_(expression <= bound, position < after)
        return and_(expression >= bound, position > after)

    def token(self, row: dict[str, Any]) -> str:
        """The page token of the page after ``row`` (listed with its :data:`SORT_VALUE`)."""
        return base64.urlsafe_b64encode(f"{self.name}:{row[SORT_VALUE]}:{row['trace_id']}".encode()).decode()

    def _decode(self, token: str) -> tuple[Any, str]:
        try:
            sort, value, trace_id = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        except (ValueError, UnicodeError):
            raise ValueError(f"page_token {token[:64]!r} is not one this server returned") from None
        if sort != self.name:
            raise ValueError(f"page_token is a page of sort={sort[:64]}, not of sort={self.name}: start without it")
        number = _number(value, self.expression.type.python_type)
        if number is None or not re.fullmatch("[0-9a-f]{32}", trace_id):
            raise ValueError(f"page_token {token[:64]!r} is not one this server returned")
        return number, trace_id


INT64 = 2**63


def _number(text: str, kind: type) -> Any:
    """``text`` as a value of the sort expression's type (``None`` when it is not one)."""
    try:
        if kind is int:
            number = int(text)
            return number if -INT64 <= number < INT64 else None
        exact = Decimal(text)
    except (ValueError, InvalidOperation):
        return None
    if not exact.is_finite():
        return None
    return exact if kind is Decimal else float(exact)


NEWEST_FIRST = Order(DEFAULT_SORT)
