"""Gateway routes: configuration CRUD under ``/api/gateway``, and invocations
(native, OpenAI- and Anthropic-compatible)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr, StringConstraints, model_validator

from core import EventStreamResponse, TokenPrice, jsonbody

from . import formats
from .calls import Call, CallFailed, Gateway
from .formats import Event, Format
from .openapi import conflict, invocation_responses
from .ssrf import UnsafeURL, check_base_url
from .store import Conflict, Missing

T = TypeVar("T")
MAX_WINDOW_SECONDS = 366 * 24 * 3600
MAX_BUCKETS = 500
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]


class SecretIn(BaseModel):
    name: Name
    api_key: SecretStr = Field(min_length=1)
    base_url: str | None = None
    headers: dict[str, str] = {}


class SecretUpdate(BaseModel):
    api_key: SecretStr = Field(min_length=1)
    base_url: str | None = None
    headers: dict[str, str] = {}


class ModelUpdate(BaseModel):
    provider: Literal["openai", "anthropic"]
    model: str = Field(min_length=1)
    secret: Name
    input_cost_per_mtok: float | None = Field(None, ge=0)
    """US dollars per million input tokens: this model's own price (a private model), over genai-prices'."""
    output_cost_per_mtok: float | None = Field(None, ge=0)
    """US dollars per million output tokens; set both prices or neither."""

    @model_validator(mode="after")
    def _both_prices_or_neither(self) -> ModelUpdate:
        if (self.input_cost_per_mtok is None) != (self.output_cost_per_mtok is None):
            raise ValueError("set both input_cost_per_mtok and output_cost_per_mtok, or neither")
        return self

    @property
    def price(self) -> TokenPrice | None:
        if self.input_cost_per_mtok is None or self.output_cost_per_mtok is None:
            return None
        return TokenPrice(input=self.input_cost_per_mtok, output=self.output_cost_per_mtok)


class ModelIn(ModelUpdate):
    name: Name


class EndpointMember(BaseModel):
    model: Name
    weight: int = Field(1, ge=1, le=1000)
    """Share of first attempts; the order of the list is the fallback order."""


class EndpointUpdate(BaseModel):
    models: list[EndpointMember] = Field(min_length=1)


class EndpointIn(EndpointUpdate):
    name: Name


async def _json_body(request: Request) -> Any:
    try:
        return jsonbody.loads(await request.body())
    except ValueError as error:
        raise formats.BadRequest(f"the body is not valid JSON: {error}") from None


def create_router(gateway: Gateway) -> APIRouter:
    router = APIRouter()
    store = gateway.store
    crud = APIRouter(prefix="/api/gateway", tags=["gateway"])

    async def guarded(action: Awaitable[T]) -> T:
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

    @crud.post(
        "/secrets",
        status_code=201,
        summary="Store provider credentials (encrypted; never shown again)",
        responses=conflict("A secret of that name exists"),
    )
    async def create_secret(secret: SecretIn) -> dict[str, Any]:
        await safe_url(secret.base_url)
        return await guarded(
            store.put_secret(
                secret.name, secret.api_key.get_secret_value(), secret.base_url, secret.headers, create=True
            )
        )

    @crud.put("/secrets/{name}", summary="Replace a secret's credentials")
    async def update_secret(name: str, secret: SecretUpdate) -> dict[str, Any]:
        await safe_url(secret.base_url)
        return await guarded(
            store.put_secret(name, secret.api_key.get_secret_value(), secret.base_url, secret.headers, create=False)
        )

    async def referring(action: Awaitable[T]) -> T:
        """``guarded``, where a missing object the body refers to is a 400
        (a missing target is checked first, as a 404)."""
        try:
            return await guarded(action)
        except HTTPException as error:
            raise HTTPException(400 if error.status_code == 404 else error.status_code, error.detail) from None

    @crud.post(
        "/models",
        status_code=201,
        summary="A provider model called with a secret",
        responses=conflict("A model of that name exists"),
    )
    async def create_model(model: ModelIn) -> dict[str, Any]:
        return await referring(store.create_model(model.name, model.provider, model.model, model.secret, model.price))

    @crud.put("/models/{name}", summary="Change a model's provider, provider model or secret")
    async def update_model(name: str, model: ModelUpdate) -> dict[str, Any]:
        await guarded(store.get_model(name))
        return await referring(store.update_model(name, model.provider, model.model, model.secret, model.price))

    @crud.post(
        "/endpoints",
        status_code=201,
        summary="A named endpoint over models, with traffic split and fallback",
        responses=conflict("An endpoint of that name exists"),
    )
    async def create_endpoint(endpoint: EndpointIn) -> dict[str, Any]:
        members = [member.model_dump() for member in endpoint.models]
        return await referring(store.create_endpoint(endpoint.name, members))

    @crud.put("/endpoints/{name}", summary="Replace an endpoint's models, weights and fallback order")
    async def update_endpoint(name: str, endpoint: EndpointUpdate) -> dict[str, Any]:
        await guarded(store.get_endpoint(name))
        return await referring(store.update_endpoint(name, [member.model_dump() for member in endpoint.models]))

    for kind, lister, getter, deleter in (
        ("secrets", store.list_secrets, store.get_secret, store.delete_secret),
        ("models", store.list_models, store.get_model, store.delete_model),
        ("endpoints", store.list_endpoints, store.get_endpoint, store.delete_endpoint),
    ):
        _add_read_delete(crud, kind, lister, getter, deleter, guarded)

    @crud.get(
        "/usage",
        summary="Recent provider attempts: status, latency, tokens and cost, newest first",
        description="`key`: only the attempts of the plughost API key of that name. Each attempt names its "
        "`key_name` (`null`: made without a key) and its place in its call's fallback order (`attempt`, 1 first).",
    )
    async def list_usage(
        limit: Annotated[int, Query(ge=1, le=1000, description="attempts, newest first")] = 100, key: str | None = None
    ) -> list[dict[str, Any]]:
        return await store.list_usage(limit, key)

    @crud.get(
        "/usage/keys",
        summary="Per plughost API key over a time window: calls, errors, tokens, spend and refused calls",
        description="One entry per key that called in this workspace (`key` `null`: calls made without one, "
        "accounts off or a person in the console): `calls` (made, fallbacks not counted again), `errors` (failed "
        "provider attempts), `input_tokens`, `output_tokens`, `cost_usd` (`null` when no attempt has a price) and "
        "`refused`, the calls its limits refused before the gateway by reason: `requests` and `tokens` per "
        "minute and `budget` (429), `endpoint` (403, not in its allow-list).",
    )
    async def usage_by_key(
        window_seconds: Annotated[float, Query(gt=0, le=MAX_WINDOW_SECONDS)] = 3600,
    ) -> dict[str, Any]:
        return {"window_seconds": window_seconds, "keys": await store.usage_by_key(time.time() - window_seconds)}

    @crud.get(
        "/usage/summary",
        summary="Per endpoint and model over a time window: calls, errors, p50/p95 latency, tokens, spend",
        description="`cost_usd`: the spend in US dollars of the attempts with a price (`null` when none has one); "
        "see the README's *What LLM calls cost*.",
    )
    async def usage_summary(
        window_seconds: Annotated[float, Query(gt=0, le=MAX_WINDOW_SECONDS)] = 3600,
    ) -> dict[str, Any]:
        return {"window_seconds": window_seconds, "models": await store.usage_summary(time.time() - window_seconds)}

    @crud.get(
        "/usage/timeline",
        summary="Attempts, errors, tokens and spend over a time window, in equal bins",
        description="The window that ends now, cut in `buckets` bins, oldest first: each bin's `start` (seconds "
        "since 1970), `calls`, `errors`, tokens, `cost_usd` (`null` when no attempt in it has a price) and "
        "`endpoints` (spend per endpoint).",
    )
    async def usage_timeline(
        window_seconds: Annotated[float, Query(gt=0, le=MAX_WINDOW_SECONDS)] = 3600,
        buckets: Annotated[int, Query(ge=1, le=MAX_BUCKETS)] = 60,
    ) -> dict[str, Any]:
        until = time.time()
        return {
            "window_seconds": window_seconds,
            "bucket_seconds": window_seconds / buckets,
            "buckets": await store.usage_timeline(until - window_seconds, until, buckets),
        }

    @crud.get(
        "/tracing",
        summary="Call tracing: on or off, traces stored, waiting and dropped (store down, slow, or queue full)",
    )
    async def tracing_state() -> dict[str, Any]:
        tracer = gateway.tracer
        return {
            "enabled": tracer.enabled,
            "exported": tracer.exported,
            "queued": tracer.queue.qsize(),
            "dropped": tracer.dropped,
        }

    async def invoke(client: Format, endpoint: str, body: dict[str, Any], request: Request) -> Response:
        call = Call(client, body, request.headers.get("traceparent"))
        try:
            if not call.stream:
                return Response(await gateway.complete(endpoint, call), media_type="application/json")
            events = await gateway.stream(endpoint, call)
        except (formats.BadRequest, CallFailed) as error:
            return _failure(client, error)
        return EventStreamResponse(_sse(client, events))

    @router.post(
        "/gateway/{endpoint}/invocations",
        tags=["gateway"],
        summary="Call an endpoint (OpenAI chat format; stream: true for SSE)",
        responses=invocation_responses("openai"),
    )
    async def invocations(endpoint: str, request: Request) -> Response:
        try:
            body = formats.json_object(await _json_body(request))
        except formats.BadRequest as error:
            return _failure("openai", error)
        return await invoke("openai", endpoint, body, request)

    async def invoke_by_model(client: Format, request: Request) -> Response:
        """The OpenAI- and Anthropic-compatible routes: the body's ``model`` names the endpoint."""
        try:
            body = await _json_body(request)
            endpoint = _model_of(body)
        except formats.BadRequest as error:
            return _failure(client, error)
        return await invoke(client, endpoint, body, request)

    @router.post(
        "/gateway/v1/chat/completions",
        tags=["gateway"],
        summary="OpenAI-compatible chat completions (model = endpoint)",
        responses=invocation_responses("openai"),
    )
    async def chat_completions(request: Request) -> Response:
        return await invoke_by_model("openai", request)

    @router.post(
        "/gateway/anthropic/v1/messages",
        tags=["gateway"],
        summary="Anthropic-compatible messages (model = endpoint)",
        responses=invocation_responses("anthropic"),
    )
    async def messages(request: Request) -> Response:
        return await invoke_by_model("anthropic", request)

    @router.post(
        "/gateway/v1/embeddings",
        tags=["gateway"],
        summary="OpenAI-compatible embeddings (model = endpoint)",
        responses=invocation_responses("openai"),
    )
    async def embeddings(request: Request) -> Response:
        try:
            body = await _json_body(request)
            endpoint = _model_of(body)
            answer = await gateway.embed(endpoint, {k: v for k, v in body.items() if k != "model"})
        except (formats.BadRequest, CallFailed) as error:
            return _failure("openai", error)
        return JSONResponse(answer)

    @router.get("/gateway/v1/models", tags=["gateway"], summary="OpenAI-compatible model list: the endpoints")
    async def list_endpoint_models() -> dict[str, Any]:
        found = await store.list_endpoints()
        return {
            "object": "list",
            "data": [
                {"id": e["name"], "object": "model", "created": int(e["created_at"]), "owned_by": "plughost"}
                for e in found
            ],
        }

    # After the calls: FastAPI tries a router's routes in order (twice per request), and a call should not
    # wait for the 20 configuration routes to be tried first (no path of theirs can match a call's).
    router.include_router(crud)
    return router


async def _sse(client: Format, batches: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    """The events on the wire, those that came together in one write; an error after the start becomes a
    final ``event: error``."""
    try:
        async for events in batches:
            yield b"".join([event.encode() for event in events])
    except Exception as error:  # after the headers, the only way left to say it
        yield formats.error_event(client, str(error)).encode()


def _failure(client: Format, error: Exception) -> JSONResponse:
    """A failed call before any answer, in the client's format."""
    if isinstance(error, formats.BadRequest):
        status, headers = 400, None
    else:
        assert isinstance(error, CallFailed)
        status, headers = error.status, {"retry-after": error.retry_after} if error.retry_after else None
    server_kind = "upstream_error" if client == "openai" else "api_error"
    kind = {404: "not_found_error", 429: "rate_limit_error", 400: "invalid_request_error"}.get(status, server_kind)
    body = formats.openai_error(str(error), kind) if client == "openai" else formats.anthropic_error(str(error), kind)
    return JSONResponse(body, status, headers=headers)


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

    @router.delete(
        f"/{kind}/{{name}}",
        status_code=204,
        summary=f"Delete one of the {kind}",
        name=f"delete_{kind}",
        responses=conflict("It is still in use"),
    )
    async def delete_one(name: str) -> Response:
        await guarded(deleter(name))
        return Response(status_code=204)
