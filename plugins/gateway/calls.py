"""The call logic: an endpoint's models picked by weight, tried in fallback order, answers mapped to the client.

A call arrives in the client's wire format (``Call``). For each model tried, the
request is put in that provider's format (``request_map``), sent (``providers``),
and the answer put back in the client's (``response_map``). Every attempt is
recorded (usage), with its real latency (a failed one's too) and what its cost
depends on (priced off the call's path, see ``costs``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from core.access import current_principal
from core.context import current_workspace, report_upstream
from core.metering import report_llm_usage

from . import providers
from .costs import AttemptCost
from .formats import BadRequest, Event, Format
from .providers import Outcome, UpstreamError
from .request_map import provider_request
from .response_map import StreamMapper, client_answer, client_finish_reason
from .settings import Settings
from .ssrf import UnsafeURL, check_base_url
from .store import GatewayStore, Missing, Target, Unreadable
from .tracing import Invocation, SpanRecord, Tracer

if TYPE_CHECKING:
    from .upstream import Upstream

logger = logging.getLogger("plughost.gateway")

UPSTREAM_MODULE = f"{__package__}.upstream"
SAFE_URL_SECONDS = 30.0
Result = TypeVar("Result")

_attempts: ContextVar[list[dict[str, Any]] | None] = ContextVar("plughost_gateway_attempts", default=None)
"""The provider attempts of the call in progress, as :meth:`Gateway._record` records them."""


@dataclass
class Call:
    """One invocation, as the client sent it."""

    client: Format
    body: dict[str, Any]
    traceparent: str | None = None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


class CallFailed(Exception):
    """Every model of the endpoint failed (or one failed in a way not worth a fallback)."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Gateway:
    """One per app: the pooled HTTP client, the store, and the call logic with fallback and split."""

    def __init__(
        self,
        store: GatewayStore,
        settings: Settings,
        tracer: Tracer,
        announce: Callable[..., None] = lambda **event: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.tracer = tracer
        self.announce = announce
        """Told of each call once it is answered, as ``announce(call=...)`` (see ``plughost_gateway_call``)."""
        self._upstream: Upstream | None = None
        self._opening = asyncio.Lock()
        self._safe_until: dict[str, float] = {}

    async def upstream(self) -> Upstream:
        """The pooled HTTP client to the providers, opened on the first provider call: its module (aiohttp)
        is imported then, in a worker thread so that the event loop goes on, not at start-up."""
        if self._upstream is None:
            async with self._opening:
                if self._upstream is None:
                    try:
                        module = await asyncio.to_thread(importlib.import_module, UPSTREAM_MODULE)
                    except ImportError as error:  # aiohttp is found (start-up checks) but does not import
                        logger.error("gateway: its HTTP client cannot be imported: %s; reinstall aiohttp", error)
                        raise CallFailed(
                            500, f"the gateway's HTTP client cannot be imported ({error}); reinstall aiohttp"
                        ) from None
                    self._upstream = module.Upstream(self.settings)
        return self._upstream

    async def close(self) -> None:
        if self._upstream is not None:
            await self._upstream.close()

    async def targets(self, endpoint: str) -> list[Target]:
        """The endpoint's models: one picked by weight first, then the rest in their fallback order."""
        try:
            targets = await self.store.resolve(endpoint)
        except Missing as error:
            raise CallFailed(404, str(error)) from None
        except Unreadable as error:
            logger.error("gateway %s: %s", endpoint, error)
            raise CallFailed(500, str(error)) from None
        first = random.choices(targets, weights=[t.weight for t in targets])[0] if len(targets) > 1 else targets[0]
        return [first, *(t for t in targets if t is not first)]

    async def _check(self, target: Target) -> None:
        """SSRF guard at call time too (a name may resolve elsewhere now), remembered briefly."""
        if target.base_url is None or self._safe_until.get(target.base_url, 0) > time.monotonic():
            return
        try:
            await check_base_url(target.base_url, allow_private=self.settings.allow_private)
        except UnsafeURL as error:
            raise UpstreamError(f"{target.name}: {error}", status=400) from None
        self._safe_until[target.base_url] = time.monotonic() + SAFE_URL_SECONDS

    # -- chat ----------------------------------------------------------------------------------------
    async def complete(self, endpoint: str, call: Call) -> bytes:
        """The answer's JSON in the client's format: the provider's own bytes when the formats match."""
        invocation = self.tracer.start(endpoint, call.body, call.traceparent)
        outcome: Outcome | None = None
        failure: Exception | None = None
        attempts = _attempts.set([])
        started = time.perf_counter()
        try:
            answer, outcome = await self._with_fallback(endpoint, call, self._complete_one, invocation)
            return answer
        except (CallFailed, BadRequest) as error:
            failure = error
            raise
        finally:
            self._end(invocation, outcome, failure)
            self._announce(endpoint, "chat", started, _attempts.get() or [], failure, streamed=False)
            _attempts.reset(attempts)

    async def _complete_one(
        self, endpoint: str, target: Target, call: Call, span: SpanRecord | None, _: Invocation | None
    ) -> tuple[bytes, Outcome]:
        body, plan = provider_request(call.client, target.provider, call.body, target.model)  # type: ignore[arg-type]
        url, headers = providers.chat_url(target)
        upstream = await self.upstream()
        started = time.perf_counter()
        try:
            raw, answer = await upstream.post(target, url, headers, body)
        finally:
            report_upstream("provider", time.perf_counter() - started)
        if not isinstance(answer, dict):
            raise UpstreamError(f"{target.name}: the provider's answer is not a JSON object", status=502)
        outcome = Outcome(text=[] if self.tracer.capture_content else None)
        (outcome.note_openai if plan.provider == "openai" else outcome.note_anthropic)(answer)
        mapped = raw if plan.same else json.dumps(client_answer(plan, answer), separators=(",", ":")).encode()
        outcome.client_finish_reasons = [client_finish_reason(plan, reason) for reason in outcome.finish_reasons]
        record = self._record(endpoint, target, 200, started, outcome, streamed=False)
        if span is not None:
            span.finish(outcome, cost=record["cost"])
        return mapped, outcome

    async def stream(self, endpoint: str, call: Call) -> AsyncIterator[list[Event]]:
        """The answer's events in the client's format, as they come (those that came together, together);
        fallback happens only before the first."""
        invocation = self.tracer.start(endpoint, call.body, call.traceparent)
        attempts = _attempts.set([])
        try:
            return await self._with_fallback(endpoint, call, self._stream_one, invocation)
        except (CallFailed, BadRequest) as error:
            self._end(invocation, None, error)
            self._announce(endpoint, "chat", None, _attempts.get() or [], error, streamed=True)
            raise
        finally:
            _attempts.reset(attempts)

    async def _stream_one(
        self, endpoint: str, target: Target, call: Call, span: SpanRecord | None, invocation: Invocation | None
    ) -> AsyncIterator[list[Event]]:
        body, plan = provider_request(call.client, target.provider, call.body, target.model)  # type: ignore[arg-type]
        client = await self.upstream()
        started = time.perf_counter()
        upstream = client.stream(target, body)
        first = await _timed_next(upstream)
        mapper, outcome = StreamMapper(plan), Outcome(text=[] if self.tracer.capture_content else None)
        note = outcome.note_openai if plan.provider == "openai" else outcome.note_anthropic
        attempts = _attempts.get()  # the list of this call: the rest of the stream runs in the response's context

        async def rest() -> AsyncIterator[list[Event]]:
            status, failure = 502, None
            try:
                events: list[Event] | None = first
                while events is not None:
                    mapped: list[Event] = []
                    try:
                        for event in events:
                            if event.payload is None or event.payload.get("type") == "message_stop":
                                status = 200  # the provider's terminal event
                            else:
                                note(event.payload)
                            mapped += mapper.feed(event)
                    except Exception:
                        if mapped:  # what came before the event that failed still goes out, first
                            yield mapped
                        raise
                    if mapped:
                        yield mapped
                    events = await _timed_next(upstream, end_ok=True)
            except Exception as error:  # recorded in the trace, then reported to the client by the router
                failure = error
                raise
            finally:
                await upstream.aclose()
                outcome.client_finish_reasons = [
                    client_finish_reason(plan, reason) for reason in outcome.finish_reasons
                ]
                record = self._record(endpoint, target, status, started, outcome, streamed=True, earlier=attempts or [])
                if status != 200 and failure is None:
                    failure = UpstreamError("the stream did not finish: the client left")
                if span is not None:
                    span.finish(outcome, str(failure) if failure else None, _error_type(failure), record["cost"])
                self._end(invocation, outcome, failure)
                earlier = [attempt for attempt in attempts or () if attempt is not record]
                self._announce(endpoint, "chat", None, [*earlier, record], failure, streamed=True)

        return rest()

    async def _with_fallback(
        self, endpoint: str, call: Call, attempt: Callable[..., Awaitable[Result]], invocation: Invocation | None
    ) -> Result:
        last: UpstreamError | None = None
        for target in await self.targets(endpoint):
            span = invocation.attempt(target.name, target.provider, target.model) if invocation is not None else None
            started = time.perf_counter()
            try:
                await self._check(target)
                return await attempt(endpoint, target, call, span, invocation)
            except BadRequest as error:  # the request cannot be put in this provider's format: no call was made
                if span is not None:
                    span.finish(None, str(error), _error_type(error))
                raise
            except UpstreamError as error:
                self._record(
                    endpoint,
                    target,
                    error.status or (504 if error.timeout else 502),
                    started,
                    Outcome(),
                    streamed=call.stream,
                )
                logger.warning("gateway %s: %s", endpoint, error)
                if span is not None:
                    span.finish(None, str(error), _error_type(error))
                last = error
                if not error.retryable:
                    break
        assert last is not None
        raise _call_failed(last)

    def _end(self, invocation: Invocation | None, outcome: Outcome | None, failure: Exception | None) -> None:
        """Finish the invocation's root span and queue the trace."""
        if invocation is None:
            return
        if invocation.attempts:
            invocation.root.attributes["gen_ai.provider.name"] = invocation.attempts[-1].attributes[
                "gen_ai.provider.name"
            ]
        answered = invocation.attempts[-1].cost if invocation.attempts else None
        invocation.root.finish(outcome, str(failure) if failure else None, _error_type(failure), answered)
        if outcome is not None and outcome.client_finish_reasons:  # the SERVER span: what the client received
            invocation.root.attributes["gen_ai.response.finish_reasons"] = outcome.client_finish_reasons
        self.tracer.record(invocation)

    # -- embeddings ----------------------------------------------------------------------------------
    async def embed(self, endpoint: str, payload: dict[str, Any]) -> Any:
        last: UpstreamError | None = None
        upstream = await self.upstream()
        for target in await self.targets(endpoint):
            started = time.perf_counter()
            try:
                await self._check(target)
                answer = await upstream.embed(target, payload)
                report_llm_usage(attempt_cost(target, _embedding_outcome(answer)))
                return answer
            except UpstreamError as error:
                last = error
                if not error.retryable:
                    break
            finally:
                report_upstream("provider", time.perf_counter() - started)
        assert last is not None
        raise _call_failed(last)

    def _record(
        self,
        endpoint: str,
        target: Target,
        status: int,
        started: float,
        outcome: Outcome,
        *,
        streamed: bool,
        earlier: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Queue one provider attempt's usage (from ``started``, a ``perf_counter`` reading), note it in the
        call in progress (``earlier``: its attempts so far, where the call's context is gone), report it to
        the request's meter (``core.metering``), and return it."""
        latency = (time.perf_counter() - started) * 1000
        attempts = _attempts.get() if earlier is None else earlier
        cost = attempt_cost(target, outcome)
        record = {
            "endpoint": endpoint,
            "model": target.name,
            "provider": target.provider,
            "status": status,
            "streamed": streamed,
            "latency_ms": latency,
            "prompt_tokens": outcome.input_tokens,
            "completion_tokens": outcome.output_tokens,
            "cost": cost,
            "key_name": _key_name(),
            "attempt": len(attempts or ()) + 1,
        }
        self.store.record_usage(**record)
        report_llm_usage(cost)
        if attempts is not None and earlier is None:
            attempts.append(record)
        return record

    def _announce(
        self,
        endpoint: str,
        kind: str,
        started: float | None,
        attempts: list[dict[str, Any]],
        failure: Exception | None,
        *,
        streamed: bool,
    ) -> None:
        """One ``plughost_gateway_call`` event per call, once it is answered (or refused)."""
        last = attempts[-1] if attempts else {}
        status = last.get("status", 0) if failure is None else getattr(failure, "status", 400)
        latency = (time.perf_counter() - started) * 1000 if started is not None else None
        self.announce(
            call={
                "workspace": current_workspace(),
                "key": _key_name(),
                "endpoint": endpoint,
                "kind": kind,
                "streamed": streamed,
                "status": status,
                "model": last.get("model"),
                "provider": last.get("provider"),
                "input_tokens": sum(attempt["prompt_tokens"] or 0 for attempt in attempts),
                "output_tokens": sum(attempt["completion_tokens"] or 0 for attempt in attempts),
                "latency_ms": latency if latency is not None else sum(a["latency_ms"] for a in attempts),
                "attempts": [
                    {key: attempt[key] for key in ("model", "provider", "status", "latency_ms")} for attempt in attempts
                ],
                "error": None if failure is None else str(failure),
            }
        )


def attempt_cost(target: Target, outcome: Outcome) -> AttemptCost:
    """What the attempt of ``target`` that ended with ``outcome`` costs depends on (it is priced later)."""
    return AttemptCost(target.provider, (outcome.model, target.model), outcome, target.price, time.time_ns())


def _embedding_outcome(answer: Any) -> Outcome:
    """The tokens an embeddings answer reports (its ``usage.prompt_tokens``)."""
    found = answer if isinstance(answer, dict) else {}
    usage = found.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = found.get("model")
    return Outcome(
        model=model if isinstance(model, str) else None, input_tokens=tokens if isinstance(tokens, int) else None
    )


def _key_name() -> str | None:
    """The name of the plughost API key that made the call (accounts on), else ``None``."""
    principal = current_principal()
    return principal.name if principal is not None and principal.kind == "key" else None


async def _timed_next(upstream: AsyncIterator[list[Event]], end_ok: bool = False) -> list[Event] | None:
    """The next events, counting the wait as provider time for the timing middleware."""
    started = time.perf_counter()
    try:
        return await anext(upstream)
    except StopAsyncIteration:
        if end_ok:
            return None
        raise UpstreamError("the provider's stream was empty") from None
    finally:
        report_upstream("provider", time.perf_counter() - started)


def _error_type(error: Exception | None) -> str | None:
    """A low-cardinality ``error.type``: the HTTP status, ``timeout``, or the exception's class."""
    if isinstance(error, (UpstreamError, CallFailed)) and error.status:
        return str(error.status)
    if isinstance(error, BadRequest):
        return "400"
    if isinstance(error, UpstreamError) and error.timeout:
        return "timeout"
    return type(error).__name__ if error is not None else None


def _call_failed(error: UpstreamError) -> CallFailed:
    if error.status == 429:
        return CallFailed(429, str(error), error.retry_after)
    if error.status in (400, 422):
        return CallFailed(400, str(error))
    if error.timeout:
        return CallFailed(504, str(error))
    return CallFailed(502, str(error))
