"""A real provider stand-in on loopback: the OpenAI and Anthropic wire formats, JSON and SSE.

The requested model name picks the behaviour:

- ``echo-*`` answers "<model>: <last user text>";
- ``tool-*`` (one call) and ``tools2-*`` (two parallel calls) are agents' models: with no
  ``tools`` in the request they fail with 400 (so a dropped field shows); given a user turn
  they call the first tool with ``{"city": "<text> #n"}``; given tool results whose ids
  match the calls before them, they answer "tool results: <results>";
- ``vision-*`` describes the images it was sent ("image <media type or url>");
- ``json-*`` needs a JSON schema (OpenAI ``response_format``; Anthropic a forced tool) and
  answers ``{"city": "Paris"}`` in it (Anthropic: as the forced tool's input);
- ``rich-*`` answers with every extra field its format has (logprobs, refusal,
  system_fingerprint, usage details; thinking blocks, cache usage);
- ``fail-500``, ``bad-request``, ``html-error`` (404, an HTML page) and ``rate-limited`` (429,
  Retry-After 7) fail; ``fail-slow`` fails with 500 after 0.3 s; ``redirect``
  answers 307 to ``/v1/elsewhere``; ``slow`` waits 2 s; ``cut`` streams two pieces and
  hangs up before the terminal event.

Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

Answer = tuple[str, list[dict[str, Any]], str]
"""(text, tool calls as {"id", "name", "arguments"}, finish: "stop" or "tool_calls")."""


class Refused(ValueError):
    """The request lacks what this model needs: a 400 from the provider."""


def create_provider() -> tuple[FastAPI, list[dict[str, Any]]]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    async def behaviour(request: Request) -> tuple[dict[str, Any], str, Response | None]:
        body = await request.json()
        seen.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        model = body.get("model", "")
        if model in ("fail-500", "fail-slow"):
            await asyncio.sleep(0.3 if model == "fail-slow" else 0)
            return body, model, JSONResponse({"error": {"message": "provider exploded"}}, 500)
        if model == "bad-request":
            return body, model, JSONResponse({"error": {"message": "temperature too hot"}}, 400)
        if model == "rate-limited":
            return body, model, JSONResponse({"error": {"message": "slow down"}}, 429, headers={"retry-after": "7"})
        if model == "html-error":
            return (
                body,
                model,
                Response("<html>internal admin page: db password hunter2</html>", 404, media_type="text/html"),
            )
        if model == "redirect":
            return body, model, RedirectResponse("/v1/elsewhere", 307)
        if model == "slow":
            await asyncio.sleep(2)
        return body, model, None

    @app.post("/v1/elsewhere")
    async def elsewhere() -> Response:
        return JSONResponse({"secret": "a body the gateway must never relay"}, 500)

    def sse(data: Any, event: str | None = None) -> bytes:
        return ((f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n").encode()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        try:
            text, calls, finish = _openai_answer(body, model)
        except Refused as error:
            return JSONResponse({"error": {"message": str(error), "type": "invalid_request_error"}}, 400)
        words = text.split(" ") if text else []
        usage: dict[str, Any] = {
            "prompt_tokens": 5,
            "completion_tokens": len(words) + len(calls),
            "total_tokens": 5 + len(words) + len(calls),
        }
        rich = model.startswith("rich-")
        if rich:
            usage |= {
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 1},
            }
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls
        ]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
            answer: dict[str, Any] = {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
            if rich:
                message["refusal"] = None
                choice["logprobs"] = {
                    "content": [{"token": "rich", "logprob": -0.1, "bytes": [114], "top_logprobs": []}]
                }
                answer |= {"system_fingerprint": "fp_rich", "service_tier": "default"}
            return JSONResponse(answer)

        async def chunks() -> AsyncIterator[bytes]:
            base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
            if rich:
                base["system_fingerprint"] = "fp_rich"
            for index, word in enumerate(words):
                if model == "cut" and index == 2:
                    return
                delta = {"content": word if index == 0 else " " + word}
                extra = (
                    {"logprobs": {"content": [{"token": word, "logprob": -0.5, "bytes": [], "top_logprobs": []}]}}
                    if rich
                    else {}
                )
                yield sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None, **extra}]})
            for index, call in enumerate(tool_calls):
                first = {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                yield sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]})
                for piece in _halves(call["function"]["arguments"]):
                    yield sse(
                        {
                            **base,
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {"tool_calls": [{"index": index, "function": {"arguments": piece}}]},
                                    "finish_reason": None,
                                }
                            ],
                        }
                    )
            yield sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                yield sse({**base, "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), 0.5, -1.0]}
            for i, text in enumerate(inputs)
        ]
        return JSONResponse(
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 3, "total_tokens": 3}}
        )

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body, model, failure = await behaviour(request)
        if failure is not None:
            return failure
        try:
            text, calls, finish = _anthropic_answer(body, model)
        except Refused as error:
            return JSONResponse(
                {"type": "error", "error": {"type": "invalid_request_error", "message": str(error)}}, 400
            )
        words = text.split(" ") if text else []
        rich = model.startswith("rich-")
        stop = "tool_use" if finish == "tool_calls" else "end_turn"
        usage: dict[str, Any] = {"input_tokens": 5, "output_tokens": len(words) + len(calls)}
        if rich:
            usage |= {"cache_read_input_tokens": 2, "cache_creation_input_tokens": 0}
        blocks: list[dict[str, Any]] = [{"type": "thinking", "thinking": "hmm", "signature": "sig"}] if rich else []
        blocks += [{"type": "text", "text": text}] if text else []
        blocks += [
            {"type": "tool_use", "id": c["id"], "name": c["name"], "input": json.loads(c["arguments"])} for c in calls
        ]
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )

        async def events() -> AsyncIterator[bytes]:
            start: dict[str, Any] = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1},
            }
            yield sse({"type": "message_start", "message": start}, "message_start")
            for index, block in enumerate(blocks):
                kind = block["type"]
                opening = (
                    {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                    if kind == "tool_use"
                    else {**block, kind: ""}
                )
                opening.pop("signature", None)
                yield sse(
                    {"type": "content_block_start", "index": index, "content_block": opening}, "content_block_start"
                )
                if kind == "thinking":
                    yield sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                        },
                        "content_block_delta",
                    )
                    yield sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "signature_delta", "signature": block["signature"]},
                        },
                        "content_block_delta",
                    )
                for number, word in enumerate(words if kind == "text" else []):
                    if model == "cut" and number == 2:
                        return
                    delta = {"type": "text_delta", "text": word if number == 0 else " " + word}
                    yield sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
                for piece in _halves(json.dumps(block["input"])) if kind == "tool_use" else ():
                    yield sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        },
                        "content_block_delta",
                    )
                yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            yield sse({"type": "ping"}, "ping")
            yield sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
                "message_delta",
            )
            yield sse({"type": "message_stop"}, "message_stop")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, seen


def _halves(text: str) -> Iterator[str]:
    middle = len(text) // 2
    yield from (piece for piece in (text[:middle], text[middle:]) if piece)


def _openai_answer(body: dict[str, Any], model: str) -> Answer:
    messages = body["messages"]
    if model.startswith("json-"):
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if not schema:
            raise Refused("json-* needs response_format json_schema")
        return json.dumps({"city": "Paris"}), [], "stop"
    if model.startswith("vision-"):
        parts = [p for m in messages if m["role"] == "user" and isinstance(m["content"], list) for p in m["content"]]
        return "; ".join(f"image {p['image_url']['url'][:22]}" for p in parts if p["type"] == "image_url"), [], "stop"
    if model.startswith(("tool-", "tools2-")):
        if not body.get("tools"):
            raise Refused("no tools were sent")
        trailing: list[dict[str, Any]] = []
        for message in reversed(messages):
            if message["role"] != "tool":
                break
            trailing.insert(0, message)
        if trailing:
            asked = next(m for m in reversed(messages) if m["role"] == "assistant")
            if sorted(c["id"] for c in asked.get("tool_calls") or []) != sorted(m["tool_call_id"] for m in trailing):
                raise Refused("tool results do not answer the tool calls")
            return "tool results: " + "; ".join(_openai_text(m["content"]) for m in trailing), [], "stop"
        return (
            "",
            _calls(model, body["tools"][0]["function"]["name"], _openai_text(messages[-1]["content"]), "call"),
            "tool_calls",
        )
    last = next(m for m in reversed(messages) if m["role"] == "user")
    return f"{model}: {_openai_text(last['content'])}", [], "stop"


def _anthropic_answer(body: dict[str, Any], model: str) -> Answer:
    messages = body["messages"]
    if model.startswith("json-"):
        choice = body.get("tool_choice") or {}
        if choice.get("type") != "tool" or not any(tool["name"] == choice["name"] for tool in body.get("tools") or []):
            raise Refused("json-* needs a forced tool")
        return (
            "",
            [{"id": "toolu_json", "name": choice["name"], "arguments": json.dumps({"city": "Paris"})}],
            "tool_calls",
        )
    if model.startswith("vision-"):
        blocks = [b for m in messages if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]]
        sources = [b["source"] for b in blocks if b["type"] == "image"]
        return "; ".join(f"image {s.get('media_type') or s.get('url', '')[:16]}" for s in sources), [], "stop"
    last = messages[-1]
    blocks = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    if model.startswith(("tool-", "tools2-")):
        if not body.get("tools"):
            raise Refused("no tools were sent")
        results = [b for b in blocks if b["type"] == "tool_result"]
        if results:
            asked = messages[-2]["content"]
            if sorted(b["id"] for b in asked if b["type"] == "tool_use") != sorted(b["tool_use_id"] for b in results):
                raise Refused("tool results do not answer the tool uses")
            return "tool results: " + "; ".join(_anthropic_text(b["content"]) for b in results), [], "stop"
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        return "Let me look.", _calls(model, body["tools"][0]["name"], text, "toolu"), "tool_calls"
    text = "".join(b.get("text", "") for b in blocks if b["type"] == "text")
    return f"{model}: {text}", [], "stop"


def _calls(model: str, tool: str, text: str, prefix: str) -> list[dict[str, Any]]:
    count = 2 if model.startswith("tools2-") else 1
    return [
        {"id": f"{prefix}_{n}", "name": tool, "arguments": json.dumps({"city": f"{text} #{n}"})}
        for n in range(1, count + 1)
    ]


def _openai_text(content: Any) -> str:
    return content if isinstance(content, str) else "".join(part["text"] for part in content if part["type"] == "text")


def _anthropic_text(content: Any) -> str:
    return (
        content if isinstance(content, str) else "".join(block["text"] for block in content if block["type"] == "text")
    )
