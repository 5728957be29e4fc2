"""A real provider stand-in on loopback: the OpenAI and Anthropic wire formats, JSON and SSE.

The requested model name picks the behaviour:
``echo-*`` answers "<model>: <last user message>"; ``fail-500``, ``bad-request`` and
``rate-limited`` (429, Retry-After 7) fail; ``slow`` waits 2 s; ``cut`` streams two
pieces and hangs up before the terminal event. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


def create_provider() -> tuple[FastAPI, list[dict[str, Any]]]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    async def behaviour(request: Request) -> tuple[dict[str, Any], str, Response | None]:
        body = await request.json()
        seen.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        model = body.get("model", "")
        if model == "fail-500":
            return body, model, JSONResponse({"error": {"message": "provider exploded"}}, 500)
        if model == "bad-request":
            return body, model, JSONResponse({"error": {"message": "temperature too hot"}}, 400)
        if model == "rate-limited":
            return body, model, JSONResponse({"error": {"message": "slow down"}}, 429, headers={"retry-after": "7"})
        if model == "slow":
            await asyncio.sleep(2)
        return body, model, None

    def answer_words(body: dict[str, Any], model: str) -> list[str]:
        last = next(m for m in reversed(body["messages"]) if m["role"] == "user")
        content = last["content"] if isinstance(last["content"], str) else "".join(p["text"] for p in last["content"])
        return f"{model}: {content}".split(" ")

    def sse(data: Any, event: str | None = None) -> bytes:
        return ((f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n").encode()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        words = answer_words(body, model)
        usage = {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words)}
            return JSONResponse({"id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})

        async def chunks() -> AsyncIterator[bytes]:
            for index, word in enumerate(words):
                if model == "cut" and index == 2:
                    return
                text = word if index == 0 else " " + word
                yield sse({"id": "cmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
            yield sse({"id": "cmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                yield sse({"id": "cmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5, -1.0]} for i, text in enumerate(inputs)]
        return JSONResponse({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 3, "total_tokens": 3}})

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        words = answer_words(body, model)
        if not body.get("stream"):
            return JSONResponse({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                                 "content": [{"type": "text", "text": " ".join(words)}], "stop_reason": "end_turn",
                                 "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": len(words)}})

        async def events() -> AsyncIterator[bytes]:
            start = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
                     "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 0}}
            yield sse({"type": "message_start", "message": start}, "message_start")
            yield sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")
            for index, word in enumerate(words):
                if model == "cut" and index == 2:
                    return
                text = word if index == 0 else " " + word
                yield sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}, "content_block_delta")
            yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": len(words)}}, "message_delta")
            yield sse({"type": "message_stop"}, "message_stop")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, seen
