"""Assistant routes: offline analysis, an LLM explanation streamed as SSE, and follow-up conversations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, Field

from core import gc_paused, run_bulk
from core.context import current_workspace

from .analysis import analyse_columns
from .hookspecs import ChatModel
from .policy import access
from .report import as_text
from .settings import Settings
from .store import ConversationStore

if TYPE_CHECKING:  # the otel plugin's public types; the assistant loads without otel
    from plugins.otel.hookspecs import TraceColumns, TraceReader

SYSTEM_PROMPT = (
    "You are a performance engineer. Explain the trace analysis you are given: what made the request slow, what "
    "failed and why, and concrete fixes, most valuable first. Be brief and specific; do not invent spans."
)
TraceId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$"), AfterValidator(str.lower)]
"""32 hex digits in either case (other tools print upper case), read as lower case."""
Answer = TypeVar("Answer")


class AnalyzeRequest(BaseModel):
    trace_id: TraceId


class ExplainRequest(BaseModel):
    trace_id: TraceId | None = None
    conversation_id: str | None = None
    question: str | None = Field(None, max_length=4000)
    endpoint: str | None = None


NO_TRACE: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such trace in this workspace"},
    422: {"description": "The trace has more spans than an analysis reads (`PLUGHOST_ASSISTANT_MAX_SPANS`)"},
}


def create_router(
    traces: TraceReader | None, chat: ChatModel | None, conversations: ConversationStore, settings: Settings
) -> APIRouter:
    router = APIRouter(prefix="/api/assistant", tags=["assistant"])
    policy = access("remote-with-token", remote_allowed=settings.allow_remote)

    async def analysed(trace_id: str, answer: Callable[[dict[str, Any], str], Answer]) -> Answer:
        """``answer(analysis, text)`` for the trace, worked out in a thread with the cyclic GC paused:
        a huge trace is millions of objects, and neither the work nor the collections it would set
        off may stall the event loop. Only ``answer``'s result (bytes, text) outlives the pause."""
        if traces is None:
            raise HTTPException(503, "no trace source: enable the otel plugin")
        summary = await traces.summaries(current_workspace(), [trace_id])
        if summary and summary[0]["span_count"] > settings.max_spans:
            raise HTTPException(
                422,
                f"trace {trace_id} has {summary[0]['span_count']:,} spans, more than the {settings.max_spans:,} "
                "an analysis reads (PLUGHOST_ASSISTANT_MAX_SPANS); open it in the trace view, which reads it in pieces",
            )
        with gc_paused():
            columns = await traces.columns(trace_id)
            if columns is None:
                raise HTTPException(404, f"no trace {trace_id} in this workspace")
            handed_over = [columns]
            del columns  # the worker drops the last reference: freeing a huge trace takes time too
            return await run_bulk(_analysed, handed_over, settings, answer)

    @router.post(
        "/analyze",
        summary="Analyse a trace without an LLM (JSON, or text with format=text)",
        responses=NO_TRACE,
        **policy,
    )
    async def analyze(request: AnalyzeRequest, format: Literal["json", "text"] = "json") -> Response:
        if format == "text":
            return PlainTextResponse(await analysed(request.trace_id, lambda analysis, text: text))
        body = await analysed(request.trace_id, lambda analysis, text: json.dumps({**analysis, "text": text}).encode())
        return Response(body, media_type="application/json")

    @router.post(
        "/explain",
        summary="The analysis plus an LLM explanation, streamed as SSE; follow up with conversation_id",
        responses={
            **NO_TRACE,
            404: {"description": "No such trace, or no such conversation (it may have expired), in this workspace"},
        },
        **policy,
    )
    async def explain(request: ExplainRequest) -> StreamingResponse:
        if chat is None:
            raise HTTPException(503, "no LLM: enable the gateway plugin and configure an endpoint")
        if request.conversation_id:
            conversation = await conversations.get(request.conversation_id)
            if conversation is None:
                raise HTTPException(404, f"no conversation {request.conversation_id} in this workspace (or it expired)")
            if not request.question:
                raise HTTPException(400, "question: a follow-up needs a question")
            trace_id, endpoint = conversation["trace_id"], conversation["endpoint"]
            opening: bytes | None = None
            messages = [*conversation["messages"], {"role": "user", "content": request.question}]
            conversation_id: str | None = request.conversation_id
        elif request.trace_id:
            endpoint = request.endpoint or settings.endpoint
            if not endpoint:
                raise HTTPException(400, "endpoint: name a gateway endpoint, or set PLUGHOST_ASSISTANT_ENDPOINT")
            trace_id = request.trace_id
            opening, text = await analysed(trace_id, lambda analysis, text: (_sse("analysis", analysis), text))
            question = request.question or "Why was this request slow, and what failed?"
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"{text}\n\n{question}"},
            ]
            conversation_id = None  # stored only once the answer is complete, so a failure leaves nothing behind
        else:
            raise HTTPException(400, "trace_id or conversation_id is required")
        try:
            pieces = await chat(endpoint, messages)
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        except RuntimeError as error:
            raise HTTPException(502, str(error)) from None
        events = _events(opening, pieces, messages, conversation_id, trace_id, endpoint, conversations)
        return StreamingResponse(events, media_type="text/event-stream")

    @router.get(
        "/conversations", summary="This workspace's conversations that have not expired, newest first", **policy
    )
    async def list_conversations() -> dict[str, Any]:
        return {"conversations": await conversations.summaries()}

    @router.get("/conversations/{conversation_id}", summary="A conversation's questions and answers", **policy)
    async def get_conversation(conversation_id: str) -> dict[str, Any]:
        conversation = await conversations.get(conversation_id)
        if conversation is None:
            raise HTTPException(404, f"no conversation {conversation_id} in this workspace (or it expired)")
        visible = [m for m in conversation["messages"] if m["role"] != "system"]
        return {**conversation, "messages": visible}

    @router.delete("/conversations/{conversation_id}", status_code=204, summary="Forget a conversation", **policy)
    async def delete_conversation(conversation_id: str) -> None:
        if not await conversations.delete(conversation_id):
            raise HTTPException(404, f"no conversation {conversation_id} in this workspace")

    return router


def _analysed(
    handed_over: list[TraceColumns], settings: Settings, answer: Callable[[dict[str, Any], str], Answer]
) -> Answer:
    """In a bulk thread: ``answer`` for the analysis of the one trace in ``handed_over``, which is
    emptied so that the trace is freed here, not on the event loop."""
    analysis = analyse_columns(handed_over.pop(), settings)
    return answer(analysis, as_text(analysis))


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _events(
    opening: bytes | None,
    pieces: AsyncIterator[str],
    messages: list[dict[str, str]],
    conversation_id: str | None,
    trace_id: str,
    endpoint: str,
    conversations: ConversationStore,
) -> AsyncIterator[bytes]:
    """``opening``, the ``analysis`` event (new conversations), ``delta`` pieces, then ``done`` with ids only,
    or a final ``error``.

    The conversation is written only after the whole answer arrived: a new one is created then
    (its id is in ``done``), a follow-up is appended then. After an ``error`` nothing is stored.
    """
    if opening is not None:
        yield opening
    answer = []
    try:
        async for piece in pieces:
            answer.append(piece)
            yield _sse("delta", {"text": piece})
    except Exception as error:  # after the headers, an event is the only way left to say it
        yield _sse("error", {"detail": str(error)})
        return
    complete = [*messages, {"role": "assistant", "content": "".join(answer)}]
    if conversation_id is None:
        conversation_id = await conversations.create(trace_id, endpoint, complete)
    else:
        await conversations.save_messages(conversation_id, complete)
    yield _sse("done", {"conversation_id": conversation_id, "trace_id": trace_id})
