"""A key's limits on gateway calls, checked before each call and counted where every process sees them
(:mod:`.counters`): ``rpm`` (calls per minute), ``tpm`` (tokens per minute), ``budget_usd`` per
``budget_period``, and ``endpoints`` (the ones it may call).

A call is counted when it is let through (so ``rpm`` holds exactly across processes); its tokens and
spend are added once it is answered (a streamed one when its stream ends, before its last piece is sent),
as the gateway reports each provider attempt (``core.metering``): its tokens, and its cost at the price
the console shows (the gateway model's own, else ``PLUGHOST_PRICES``, else genai-prices). ``tpm`` and the
budget are therefore checked against calls already answered: they may be overshot by the calls in flight.
Each refusal is told to other plugins (``plughost_gateway_key_refused``), off the call's path.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import Pricing, run_bulk
from core.access import Principal
from core.metering import LLMUsage, metering

from .counters import PERIODS, TOTAL, Counters, Period, Usage, minute_window, period_window, seconds_left

logger = logging.getLogger("plughost.security")

GATEWAY_CALL = re.compile(
    r"^/gateway/(?:v1/chat/completions|anthropic/v1/messages|v1/embeddings|(?P<endpoint>[^/]+)/invocations)$"
)
"""The routes that call a provider (and spend)."""
MAX_BUFFERED_BODY = 16 * 1024 * 1024
"""A call's body is read here (to find its ``model``) only for a key with an endpoint allow-list, up to this."""


@dataclass
class LimitRefusal:
    status: int
    detail: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    kind: str | None = None
    """The error type when it is not the status's usual one (``budget_exceeded``)."""
    reason: str = "requests"
    """What was over: ``requests``, ``tokens``, ``budget`` or ``endpoint`` (see ``plughost_gateway_key_refused``)."""


@dataclass
class Admission:
    """What checking a call gave: a refusal, or the headers to add to its answer, and its body to replay."""

    refusal: LimitRefusal | None
    headers: list[tuple[bytes, bytes]]
    receive: Receive


class GatewayLimits:
    def __init__(self, counters: Counters, pricing: Pricing, refused: Callable[[dict[str, Any]], None]) -> None:
        self.counters = counters
        self.pricing = pricing
        """The server's pricing (``host.pricing``), which the console's costs use too."""
        self.refused = refused
        """Told of each refusal (``plughost_gateway_key_refused``'s ``refusal``), without waiting."""

    @staticmethod
    def applies(principal: Principal, scope: Scope) -> bool:
        return (
            principal.kind == "key"
            and bool(principal.limits)
            and scope.get("method") == "POST"
            and GATEWAY_CALL.match(scope["path"]) is not None
        )

    async def admit(self, principal: Principal, workspace: str, scope: Scope, receive: Receive) -> Admission:
        """Let the call of ``principal`` (a key with limits) in ``workspace`` through, or refuse it (counted,
        and told to other plugins)."""
        admission, endpoint = await self._admit(principal, scope, receive)
        refused = admission.refusal
        if refused is not None:
            await self.counters.add(principal.name, [TOTAL], refused=1)
            self.refused(
                {
                    "workspace": workspace,
                    "key": principal.name,
                    "endpoint": endpoint,
                    "status": refused.status,
                    "reason": refused.reason,
                }
            )
        return admission

    async def _admit(self, principal: Principal, scope: Scope, receive: Receive) -> tuple[Admission, str | None]:
        """The admission, and the endpoint called when it is known (in the path, or read for the allow-list)."""
        limits, key, now = principal.limits, principal.name, time.time()
        matched = GATEWAY_CALL.match(scope["path"])
        endpoint = matched.group("endpoint") if matched else None
        allowed = limits.get("endpoints")
        if allowed:
            endpoint, receive = await _endpoint_of(scope, receive)
            if endpoint not in allowed:
                detail = f"key {key!r} may call only the endpoints {', '.join(allowed)}; not {endpoint!r}"
                return Admission(LimitRefusal(403, detail, reason="endpoint"), [], receive), endpoint
        minute = minute_window(now)
        period: Period = limits.get("budget_period", "month")
        budget_window = period_window(period, now)
        headers: list[tuple[bytes, bytes]] = []
        if "tpm" in limits or "budget_usd" in limits:
            used = await self.counters.read(key, [minute, budget_window])
            tokens = used[minute].tokens if minute in used else 0
            spent = used[budget_window].spend_usd if budget_window in used else 0.0
            if "tpm" in limits:
                left = max(0, limits["tpm"] - tokens)
                headers += _rate_headers("tokens", limits["tpm"], left, seconds_left(minute, now))
                if left == 0:
                    detail = f"key {key!r} used its {limits['tpm']} tokens per minute"
                    refusal = _refusal(429, detail, headers, seconds_left(minute, now), "tokens")
                    return Admission(refusal, [], receive), endpoint
            if "budget_usd" in limits and spent >= limits["budget_usd"]:
                detail = f"key {key!r} spent its budget of ${limits['budget_usd']:g} for this {period} (${spent:.6g})"
                refusal = _refusal(429, detail, headers, seconds_left(budget_window, now), "budget", "budget_exceeded")
                return Admission(refusal, [], receive), endpoint
        if "rpm" not in limits:
            await self.counters.add(key, [minute, TOTAL], calls=1)
            return Admission(None, headers, receive), endpoint
        calls = await self.counters.add(key, [minute, TOTAL], calls=1)
        wait = seconds_left(minute, now)
        headers += _rate_headers("requests", limits["rpm"], max(0, limits["rpm"] - calls), wait)
        if calls > limits["rpm"]:
            await self.counters.add(key, [TOTAL], calls=-1)  # refused: not a call made
            detail = f"key {key!r} made its {limits['rpm']} calls this minute"
            return Admission(_refusal(429, detail, headers, wait, "requests"), [], receive), endpoint
        return Admission(None, headers, receive), endpoint

    async def usage(self, key: str, period: Period) -> dict[str, Any]:
        """What ``key`` did through the gateway: calls, tokens, spend and refusals (429 and 403) since it was
        made; calls and tokens this minute; spend this budget period."""
        now = time.time()
        minute, budget_window = minute_window(now), period_window(period, now)
        read = await self.counters.read(key, [TOTAL, minute, budget_window])
        total, this_minute = read.get(TOTAL, Usage()), read.get(minute, Usage())
        return {
            "calls": total.calls,
            "tokens": total.tokens,
            "spend_usd": total.spend_usd,
            "refused": total.refused,
            "this_minute": {"calls": this_minute.calls, "tokens": this_minute.tokens},
            f"spend_usd_this_{period}": read.get(budget_window, Usage()).spend_usd,
        }

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """Serve an admitted call, metered: what the gateway reports of it is added to ``key``'s counters
        before the answer's (or stream's) last piece is sent, since a client that has its answer may call
        again at once and must find it counted; what is reported after (the client left) once it is over."""
        with metering() as usages:

            async def record() -> None:
                reported = usages[:]
                usages.clear()
                if reported:
                    await self.record(key, reported)

            async def send_metered(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await record()
                await send(message)

            try:
                await app(scope, receive, send_metered)
            finally:
                await record()

    async def record(self, key: str, usages: list[LLMUsage]) -> None:
        """Add an answered call's tokens and spend (its provider attempts') to its key's counters."""
        tokens = sum(usage.tokens for usage in usages)
        spend = await run_bulk(_spend, self.pricing, usages)
        now = time.time()
        windows = [minute_window(now), *(period_window(period, now) for period in PERIODS), TOTAL]
        await self.counters.add(key, windows, tokens=tokens, spend=spend)


def _spend(pricing: Pricing, usages: list[LLMUsage]) -> float:
    """What the attempts cost, those with a price (pricing is CPU work: run it in a bulk thread)."""
    return sum(cost for usage in usages if (cost := usage.cost(pricing)) is not None)


def _refusal(
    status: int, detail: str, headers: list[tuple[bytes, bytes]], wait: int, reason: str, kind: str | None = None
) -> LimitRefusal:
    return LimitRefusal(status, detail, [*headers, (b"retry-after", str(wait).encode())], kind, reason)


def _rate_headers(kind: str, limit: int, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
    """OpenAI's ``x-ratelimit-*`` headers, which clients and SDKs read."""
    return [
        (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()),
        (f"x-ratelimit-reset-{kind}".encode(), f"{reset}s".encode()),
    ]


async def _endpoint_of(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """The endpoint a call names (in its path, or its body's ``model``), and a ``receive`` that replays the body."""
    matched = GATEWAY_CALL.match(scope["path"])
    if matched and matched.group("endpoint"):
        return matched.group("endpoint"), receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BUFFERED_BODY or not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": size > MAX_BUFFERED_BODY}
        return await receive()

    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        model = None
    return (model if isinstance(model, str) else None), replay
