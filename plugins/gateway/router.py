"""Gateway routes: configuration CRUD under ``/api/gateway``, and invocations (native, OpenAI- and Anthropic-compatible)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import aiohttp
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, SecretStr, StringConstraints

from core import jsonbody
from core.context import report_upstream

from . import formats, providers
from .providers import Chat, Completion, Finish, TextDelta, UpstreamError
from .settings import Settings
from .ssrf import UnsafeURL, check_base_url
from .store import Conflict, GatewayStore, Missing, Target, Unreadable

logger = logging.getLogger("plughost.gateway")

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
SAFE_URL_SECONDS = 30.0


class SecretIn(BaseModel):
    name: Name
    api_key: SecretStr = Field(min_length=1)
    base_url: str | None = None
    headers: dict[str, str] = {}


class SecretUpdate(BaseModel):
    api_key: SecretStr = Field(min_length=1)
    base_url: str | None = None
    headers: dict[str, str] = {}


class ModelIn(BaseModel):
    name: Name
    provider: Literal["openai", "anthropic"]
    model: str = Field(min_length=1)
    secret: Name


class EndpointMember(BaseModel):
    model: Name
    weight: int = Field(1, ge=1, le=1000)
    """Share of first attempts; the order of the list is the fallback order."""


class EndpointIn(BaseModel):
    name: Name
    models: list[EndpointMember] = Field(min_length=1)


class CallFailed(Exception):
    """Every model of the endpoint failed (or one failed in a way not worth a fallback)."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Gateway:
    """One per app: the pooled HTTP client, the store, and the call logic with fallback and split."""

    def __init__(self, store: GatewayStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._client: aiohttp.ClientSession | None = None
        self._safe_until: dict[str, float] = {}

    @property
    def client(self) -> aiohttp.ClientSession:
        assert self._client is not None, "the gateway's lifespan has not started"
        return self._client

    async def start(self) -> None:
        """Open the pooled HTTP client (one per process); it must be made inside the event loop."""
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self.settings.timeout_seconds),
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
            cookie_jar=aiohttp.DummyCookieJar(),  # a provider's cookies must not carry over between users
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

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

    async def complete(self, endpoint: str, chat: Chat) -> Completion:
        return await self._with_fallback(endpoint, chat, self._complete_one)

    async def _complete_one(self, endpoint: str, target: Target, chat: Chat) -> Completion:
        started = time.perf_counter()
        try:
            completion = await providers.complete(self.client, target, chat)
        finally:
            report_upstream("provider", time.perf_counter() - started)
        self._record(endpoint, target, 200, started, completion.usage, streamed=False)
        return completion

    async def stream(self, endpoint: str, chat: Chat) -> AsyncIterator[TextDelta | Finish]:
        """The answer as it comes; fallback happens only before its first piece."""
        return await self._with_fallback(endpoint, chat, self._stream_one)

    async def _stream_one(self, endpoint: str, target: Target, chat: Chat) -> AsyncIterator[TextDelta | Finish]:
        started = time.perf_counter()
        upstream = providers.stream(self.client, target, chat)
        first = await self._timed_next(upstream)

        async def rest() -> AsyncIterator[TextDelta | Finish]:
            status, usage = 502, providers.Usage()
            try:
                item: TextDelta | Finish | None = first
                while item is not None:
                    if isinstance(item, Finish):
                        status, usage = 200, item.usage
                    yield item
                    item = await self._timed_next(upstream, end_ok=True)
            finally:
                await upstream.aclose()
                self._record(endpoint, target, status, started, usage, streamed=True)

        return rest()

    @staticmethod
    async def _timed_next(upstream: AsyncIterator[TextDelta | Finish], end_ok: bool = False) -> TextDelta | Finish | None:
        """The next item, counting the wait as provider time for the timing middleware."""
        started = time.perf_counter()
        try:
            return await anext(upstream)
        except StopAsyncIteration:
            if end_ok:
                return None
            raise UpstreamError("the provider's stream was empty") from None
        finally:
            report_upstream("provider", time.perf_counter() - started)

    async def _with_fallback(self, endpoint: str, chat: Chat, call: Callable[..., Any]) -> Any:
        last: UpstreamError | None = None
        for target in await self.targets(endpoint):
            try:
                await self._check(target)
                return await call(endpoint, target, chat)
            except UpstreamError as error:
                self._record(endpoint, target, error.status or (504 if error.timeout else 502), None, providers.Usage(), streamed=chat.stream)
                logger.warning("gateway %s: %s", endpoint, error)
                last = error
                if not error.retryable:
                    break
        assert last is not None
        raise _call_failed(last)

    async def embed(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        last: UpstreamError | None = None
        for target in await self.targets(endpoint):
            started = time.perf_counter()
            try:
                await self._check(target)
                return await providers.embed(self.client, target, payload)
            except UpstreamError as error:
                last = error
                if not error.retryable:
                    break
            finally:
                report_upstream("provider", time.perf_counter() - started)
        assert last is not None
        raise _call_failed(last)

    def _record(self, endpoint: str, target: Target, status: int, started: float | None, usage: providers.Usage, *, streamed: bool) -> None:
        latency = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        self.store.record_usage(
            endpoint=endpoint, model=target.name, provider=target.provider, status=status, streamed=streamed,
            latency_ms=latency, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
        )


def _call_failed(error: UpstreamError) -> CallFailed:
    if error.status == 429:
        return CallFailed(429, str(error), error.retry_after)
    if error.status in (400, 422):
        return CallFailed(400, str(error))
    if error.timeout:
        return CallFailed(504, str(error))
    return CallFailed(502, str(error))


async def _json_body(request: Request) -> Any:
    try:
        return jsonbody.loads(await request.body())
    except ValueError as error:
        raise formats.BadRequest(f"the body is not valid JSON: {error}") from None


def create_router(gateway: Gateway) -> APIRouter:
    router = APIRouter()
    store = gateway.store
    crud = APIRouter(prefix="/api/gateway", tags=["gateway"])

    async def guarded(action: Any) -> Any:
        try:
            return await action
        except Conflict as error:
            raise HTTPException(409, str(error)) from None
        except Missing as error:
            raise HTTPException(404, str(error)) from None

    async def safe_url(url: str | None) -> None:
        if url is not None:
            try:
                await check_base_url(url, allow_private=gateway.settings.allow_private)
            except UnsafeURL as error:
                raise HTTPException(400, str(error)) from None

    @crud.post("/secrets", status_code=201, summary="Store provider credentials (encrypted; never shown again)")
    async def create_secret(secret: SecretIn) -> dict[str, Any]:
        await safe_url(secret.base_url)
        return await guarded(store.put_secret(secret.name, secret.api_key.get_secret_value(), secret.base_url, secret.headers, create=True))  # type: ignore[no-any-return]

    @crud.put("/secrets/{name}", summary="Replace a secret's credentials")
    async def update_secret(name: str, secret: SecretUpdate) -> dict[str, Any]:
        await safe_url(secret.base_url)
        return await guarded(store.put_secret(name, secret.api_key.get_secret_value(), secret.base_url, secret.headers, create=False))  # type: ignore[no-any-return]

    @crud.post("/models", status_code=201, summary="A provider model called with a secret")
    async def create_model(model: ModelIn) -> dict[str, Any]:
        try:
            return await guarded(store.create_model(model.name, model.provider, model.model, model.secret))  # type: ignore[no-any-return]
        except HTTPException as error:
            raise HTTPException(400 if error.status_code == 404 else error.status_code, error.detail) from None

    @crud.post("/endpoints", status_code=201, summary="A named endpoint over models, with traffic split and fallback")
    async def create_endpoint(endpoint: EndpointIn) -> dict[str, Any]:
        members = [member.model_dump() for member in endpoint.models]
        try:
            return await guarded(store.create_endpoint(endpoint.name, members))  # type: ignore[no-any-return]
        except HTTPException as error:
            raise HTTPException(400 if error.status_code == 404 else error.status_code, error.detail) from None

    for kind, lister, getter, deleter in (
        ("secrets", store.list_secrets, store.get_secret, store.delete_secret),
        ("models", store.list_models, store.get_model, store.delete_model),
        ("endpoints", store.list_endpoints, store.get_endpoint, store.delete_endpoint),
    ):
        _add_read_delete(crud, kind, lister, getter, deleter, guarded)

    @crud.get("/usage", summary="Recent calls: status, latency and tokens, newest first")
    async def list_usage(limit: int = 100) -> list[dict[str, Any]]:
        return await store.list_usage(min(max(limit, 1), 1000))

    router.include_router(crud)

    def openai_failure(error: Exception) -> JSONResponse:
        status, kind, headers = _failure(error, "upstream_error")
        return JSONResponse(formats.openai_error(str(error), kind), status, headers=headers)

    async def chat(endpoint: str, body: Any) -> Response:
        try:
            request = formats.chat_from_openai(body)
            if not request.stream:
                return JSONResponse(formats.openai_completion(await gateway.complete(endpoint, request), endpoint))
            items = await gateway.stream(endpoint, request)
        except (formats.BadRequest, CallFailed) as error:
            return openai_failure(error)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(formats.openai_stream(items, endpoint, include_usage), media_type="text/event-stream")

    @router.post("/gateway/{endpoint}/invocations", tags=["gateway"], summary="Call an endpoint (OpenAI chat format; stream: true for SSE)")
    async def invocations(endpoint: str, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except formats.BadRequest as error:
            return openai_failure(error)
        return await chat(endpoint, body)

    @router.post("/gateway/v1/chat/completions", tags=["gateway"], summary="OpenAI-compatible chat completions (model = endpoint)")
    async def chat_completions(request: Request) -> Response:
        try:
            body = await _json_body(request)
            endpoint = _model_of(body)
        except formats.BadRequest as error:
            return openai_failure(error)
        return await chat(endpoint, body)

    @router.post("/gateway/v1/embeddings", tags=["gateway"], summary="OpenAI-compatible embeddings (model = endpoint)")
    async def embeddings(request: Request) -> Response:
        try:
            body = await _json_body(request)
            endpoint = _model_of(body)
            answer = await gateway.embed(endpoint, {k: v for k, v in body.items() if k != "model"})
        except (formats.BadRequest, CallFailed) as error:
            return openai_failure(error)
        return JSONResponse({**answer, "model": endpoint})

    @router.get("/gateway/v1/models", tags=["gateway"], summary="OpenAI-compatible model list: the endpoints")
    async def list_endpoint_models() -> dict[str, Any]:
        found = await store.list_endpoints()
        return {"object": "list", "data": [{"id": e["name"], "object": "model", "created": int(e["created_at"]), "owned_by": "plughost"} for e in found]}

    @router.post("/gateway/anthropic/v1/messages", tags=["gateway"], summary="Anthropic-compatible messages (model = endpoint)")
    async def messages(request: Request) -> Response:
        try:
            body = await _json_body(request)
            endpoint = _model_of(body)
            chat_request = formats.chat_from_anthropic(body)
            if not chat_request.stream:
                return JSONResponse(formats.anthropic_message(await gateway.complete(endpoint, chat_request), endpoint))
            items = await gateway.stream(endpoint, chat_request)
        except (formats.BadRequest, CallFailed) as error:
            status, kind, headers = _failure(error, "api_error")
            return JSONResponse(formats.anthropic_error(str(error), kind), status, headers=headers)
        return StreamingResponse(formats.anthropic_stream(items, endpoint), media_type="text/event-stream")

    return router


def _failure(error: Exception, server_kind: str) -> tuple[int, str, dict[str, str] | None]:
    """(status, error type, headers) for a failed call, in the words both wire formats use."""
    if isinstance(error, formats.BadRequest):
        return 400, "invalid_request_error", None
    assert isinstance(error, CallFailed)
    kind = {404: "not_found_error", 429: "rate_limit_error", 400: "invalid_request_error"}.get(error.status, server_kind)
    return error.status, kind, {"retry-after": error.retry_after} if error.retry_after else None


def _model_of(body: Any) -> str:
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model:
        raise formats.BadRequest("model: the endpoint name is required")
    return model


def _add_read_delete(router: APIRouter, kind: str, lister: Any, getter: Any, deleter: Any, guarded: Any) -> None:
    @router.get(f"/{kind}", summary=f"List {kind}", name=f"list_{kind}")
    async def list_all() -> list[dict[str, Any]]:
        return await lister()  # type: ignore[no-any-return]

    @router.get(f"/{kind}/{{name}}", summary=f"One of the {kind}", name=f"get_{kind}")
    async def get_one(name: str) -> dict[str, Any]:
        return await guarded(getter(name))  # type: ignore[no-any-return]

    @router.delete(f"/{kind}/{{name}}", status_code=204, summary=f"Delete one of the {kind}", name=f"delete_{kind}")
    async def delete_one(name: str) -> Response:
        await guarded(deleter(name))
        return Response(status_code=204)
