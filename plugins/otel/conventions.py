"""One reading of what a span says about an LLM app, whichever convention its instrumentation follows.

Pure functions over a span's attributes (a mapping of key to Python value, as
:func:`.present.attributes` makes it). :func:`llm_facts` is cheap (a few dictionary look-ups,
no loop over the attributes) and runs at ingest for every span; :func:`messages` reads the
conversation, only when a span is shown. Where conventions overlap, the newest name is read
first. :data:`CONVENTIONS` lists, per convention, the attributes read: the README's table is
made from it and a test checks that they agree.

- **OpenTelemetry GenAI** (``gen_ai.*``), current names and the earlier ones
  (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``, ``gen_ai.prompt.N.*``...).
- **OpenInference** (Phoenix, ``openinference.span.kind``, ``llm.*``, ``input.value``...).
- **OpenLLMetry** (Traceloop: ``traceloop.*``, ``llm.request.type``, ``llm.usage.*``).
- **Vercel AI SDK** (``ai.*``).
- **Langfuse** (``langfuse.session.id``, the name its OTLP ingestion still reads beside ``session.id``).
- **MLflow tracing** (``mlflow.*``): every attribute value of an MLflow span is a JSON-encoded
  string; :func:`decoded` gives them back as values, for display and for search.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

Attributes = Mapping[str, Any]
Message = dict[str, Any]
"""``{"role": ..., "parts": [...]}``, the shape of ``gen_ai.input.messages``: parts are
``{"type": "text", "content"}``, ``{"type": "tool_call", "id", "name", "arguments"}``,
``{"type": "tool_call_response", "id", "response"}`` or ``{"type": "image", "url"}``; an
output message may carry ``finish_reason``."""

JSON_STARTS = frozenset('"[{-0123456789tfn')
MAX_TOKENS = 2**40
"""Far above any real call; keeps sums inside BIGINT whatever a client claims."""

KINDS = ("llm", "embedding", "tool", "agent", "retriever", "reranker", "chain", "guardrail", "evaluator")
"""What a span can be, once read; ``llm`` and ``embedding`` are model calls."""
MODEL_CALLS = frozenset({"llm", "embedding"})

GEN_AI_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retriever",
    "invoke_workflow": "chain",
}
OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retriever",
    "RERANKER": "reranker",
    "CHAIN": "chain",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
}
TRACELOOP_KINDS = {"workflow": "chain", "task": "chain", "agent": "agent", "tool": "tool"}
TRACELOOP_REQUEST_TYPES = {"chat": "llm", "completion": "llm", "embedding": "embedding", "rerank": "reranker"}
VERCEL_OPERATIONS = {
    "ai.generateText": "llm",
    "ai.generateText.doGenerate": "llm",
    "ai.streamText": "llm",
    "ai.streamText.doStream": "llm",
    "ai.generateObject": "llm",
    "ai.generateObject.doGenerate": "llm",
    "ai.streamObject": "llm",
    "ai.streamObject.doStream": "llm",
    "ai.embed": "embedding",
    "ai.embed.doEmbed": "embedding",
    "ai.embedMany": "embedding",
    "ai.embedMany.doEmbed": "embedding",
    "ai.toolCall": "tool",
}
MLFLOW_KINDS = {**OPENINFERENCE_KINDS, "CHAT_MODEL": "llm"}
"""MLflow's span types are OpenInference's names (LLM, TOOL, AGENT, RETRIEVER...) and CHAT_MODEL."""

# Names read, newest first where conventions overlap.
KIND_KEYS = ("gen_ai.operation.name", "openinference.span.kind", "llm.request.type", "traceloop.span.kind")
VERCEL_OPERATION = "ai.operationId"
MLFLOW_SPAN_TYPE = "mlflow.spanType"
MLFLOW_MARKERS = (MLFLOW_SPAN_TYPE, "mlflow.traceRequestId")
KIND_ATTRIBUTES = (*KIND_KEYS, VERCEL_OPERATION, MLFLOW_SPAN_TYPE)
"""Every attribute :func:`span_kind` reads."""
REQUEST_MODEL = (
    "gen_ai.request.model",
    "llm.request.model_name",
    "llm.request.model",
    "ai.model.id",
    "mlflow.llm.model",
)
RESPONSE_MODEL = (
    "gen_ai.response.model",
    "llm.response.model_name",
    "llm.response.model",
    "ai.response.model",
    "llm.model_name",
)
EMBEDDING_MODEL = ("embedding.model_name",)
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.vendor", "mlflow.llm.provider")
VERCEL_PROVIDER = "ai.model.provider"
"""``openai.chat``: the provider is the part before the dot."""
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
CACHED_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "ai.usage.cachedInputTokens",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "llm.usage.reasoning_tokens",
    "ai.usage.reasoningTokens",
)
MLFLOW_USAGE = "mlflow.chat.tokenUsage"
MLFLOW_COST = "mlflow.llm.cost"
COST = ("llm.cost.total", "gen_ai.usage.cost")
FINISH_REASONS = (
    "gen_ai.response.finish_reasons",
    "gen_ai.response.finish_reason",
    "llm.finish_reason",
    "llm.response.finish_reason",
    "ai.response.finishReason",
    "gen_ai.completion.0.finish_reason",
)
SESSION = (
    "gen_ai.conversation.id",
    "session.id",
    "langfuse.session.id",
    "traceloop.association.properties.session_id",
    "ai.telemetry.metadata.sessionId",
)
USER = ("user.id", "enduser.id", "traceloop.association.properties.user_id", "ai.telemetry.metadata.userId")
TOOL_NAME = ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")
AGENT_NAME = ("gen_ai.agent.name", "agent.name")

FACT_KEYS = frozenset(
    (
        *KIND_KEYS,
        VERCEL_OPERATION,
        *MLFLOW_MARKERS,
        *REQUEST_MODEL,
        *RESPONSE_MODEL,
        *EMBEDDING_MODEL,
        *PROVIDER,
        VERCEL_PROVIDER,
        *INPUT_TOKENS,
        *OUTPUT_TOKENS,
        *CACHED_TOKENS,
        *CACHE_WRITE_TOKENS,
        *REASONING_TOKENS,
        MLFLOW_USAGE,
        MLFLOW_COST,
        *COST,
        *FINISH_REASONS,
        *SESSION,
        *USER,
        *TOOL_NAME,
        *AGENT_NAME,
    )
)
"""Every attribute :func:`llm_facts` reads: ingest hands it only these (a set look-up per attribute)."""


@dataclass(frozen=True, slots=True)
class LlmFacts:
    """What one span says about an LLM app; ``None`` where it says nothing."""

    kind: str | None
    request_model: str | None = None
    response_model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    """Input tokens read from the provider's prompt cache."""
    cache_write_tokens: int | None = None
    """Input tokens written to the provider's prompt cache (priced apart: Anthropic's cost more than input)."""
    reasoning_tokens: int | None = None
    cost: float | None = None
    finish_reasons: tuple[str, ...] = ()
    session_id: str | None = None
    user_id: str | None = None
    tool_name: str | None = None
    agent_name: str | None = None

    @property
    def model_call(self) -> bool:
        """An LLM or embedding call (a candidate to be counted, see :func:`counted_calls`)."""
        return self.kind in MODEL_CALLS

    @property
    def has_usage(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def model(self) -> str | None:
        return self.response_model or self.request_model

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost": self.cost,
            "finish_reasons": list(self.finish_reasons),
            "session_id": self.session_id,
            "user_id": self.user_id,
            "tool_name": self.tool_name,
            "agent_name": self.agent_name,
        }


NOTHING = LlmFacts(None)


class StoredCall(NamedTuple):
    """What the span store says of one model-call span of a trace."""

    counted: bool
    """Whether it carries its call (see :func:`counted_calls`)."""
    cost_usd: float | None
    """What it cost in US dollars (see ``facts.call_cost``), ``None`` when no price is known."""
    input_tokens: int | None = None
    output_tokens: int | None = None


def is_mlflow(attributes: Attributes) -> bool:
    return MLFLOW_MARKERS[0] in attributes or MLFLOW_MARKERS[1] in attributes


def decoded(attributes: Attributes) -> dict[str, Any]:
    """An MLflow span's attributes with their JSON-encoded values decoded (others as they are)."""
    if not is_mlflow(attributes):
        return dict(attributes)
    return {key: json_value(value) for key, value in attributes.items()}


def json_value(value: Any) -> Any:
    """``value`` decoded when it is a string holding JSON, else ``value`` itself."""
    if isinstance(value, str) and value and value[0] in JSON_STARTS:
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def llm_facts(attributes: Attributes) -> LlmFacts:
    """What ``attributes`` (one span's; MLflow's may still be JSON-encoded) say about an LLM app."""
    get = attributes.get
    if is_mlflow(attributes):
        attributes = {key: json_value(get(key)) for key in FACT_KEYS if key in attributes}
        get = attributes.get
    kind = span_kind(get)
    request_model = _text(_first(get, REQUEST_MODEL))
    response_model = _text(_first(get, RESPONSE_MODEL))
    if kind is None and (request_model or response_model):
        kind = "llm"  # older instrumentations name a model and no operation
    if kind is None:  # a span of any kind may name its conversation (OpenInference's using_session sets every span's)
        session_id = _text(_first(get, SESSION))
        return NOTHING if session_id is None else LlmFacts(None, session_id=session_id)
    if kind == "embedding" and request_model is None:
        request_model = _text(_first(get, EMBEDDING_MODEL))
    usage = get(MLFLOW_USAGE)
    usage = usage if isinstance(usage, dict) else {}
    cost = get(MLFLOW_COST)
    provider = _text(_first(get, PROVIDER))
    vercel_provider = get(VERCEL_PROVIDER)
    if provider is None and isinstance(vercel_provider, str):
        provider = vercel_provider.split(".", 1)[0] or None
    return LlmFacts(
        kind=kind,
        request_model=request_model,
        response_model=response_model,
        provider=provider,
        input_tokens=_tokens(_first(get, INPUT_TOKENS), usage.get("input_tokens")),
        output_tokens=_tokens(_first(get, OUTPUT_TOKENS), usage.get("output_tokens")),
        cached_tokens=_tokens(_first(get, CACHED_TOKENS), usage.get("cache_read_input_tokens")),
        cache_write_tokens=_tokens(_first(get, CACHE_WRITE_TOKENS), usage.get("cache_creation_input_tokens")),
        reasoning_tokens=_tokens(_first(get, REASONING_TOKENS), None),
        cost=_cost(cost.get("total_cost") if isinstance(cost, dict) else _first(get, COST)),
        finish_reasons=_finish_reasons(_first(get, FINISH_REASONS)),
        session_id=_text(_first(get, SESSION)),
        user_id=_text(_first(get, USER)),
        tool_name=_text(_first(get, TOOL_NAME)) if kind == "tool" else None,
        agent_name=_text(_first(get, AGENT_NAME)) if kind == "agent" else None,
    )


def span_kind(get: Callable[[str], Any]) -> str | None:
    """What a span is in LLM terms (one of :data:`KINDS`), from the attributes ``get`` reads
    (:data:`KIND_ATTRIBUTES`; an MLflow span's :func:`decoded`), or ``None`` when none says."""
    operation = get("gen_ai.operation.name")
    if operation in GEN_AI_OPERATIONS:
        return GEN_AI_OPERATIONS[operation]
    kind = OPENINFERENCE_KINDS.get(get("openinference.span.kind"))
    kind = kind or TRACELOOP_REQUEST_TYPES.get(get("llm.request.type"))
    kind = kind or TRACELOOP_KINDS.get(get("traceloop.span.kind"))
    kind = kind or VERCEL_OPERATIONS.get(get(VERCEL_OPERATION))
    return kind or MLFLOW_KINDS.get(get(MLFLOW_SPAN_TYPE))


def _first(get: Callable[[str], Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tokens(value: Any, fallback: Any) -> int | None:
    """A token count as an int in ``0..MAX_TOKENS``, or ``None`` when none is given."""
    value = fallback if value is None else value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if not value.isdigit():
            return None
        value = int(value[:15])
    if isinstance(value, float):
        if value != value:
            return None
        value = int(min(value, MAX_TOKENS))
    if not isinstance(value, int):
        return None
    return max(0, min(value, MAX_TOKENS))


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _finish_reasons(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value[:1] == "[":  # logfire sends the array JSON-encoded
        value = json_value(value)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(reason for reason in value if isinstance(reason, str))
    return ()


def counted_calls(calls: Mapping[str, bool], parents: Mapping[str, str | None]) -> set[str]:
    """Which of a trace's model-call spans carry a call, so that each call and its tokens count once.

    ``calls`` maps each model-call span to whether it has usage; ``parents`` maps span ids to
    their parents (as far as known). Nested model-call spans are one call seen at several
    levels (a client's span, a gateway's SERVER span and its attempt span; an agent framework's
    span around an SDK's span). The rule: **the innermost span with usage carries the call**.
    A span with usage counts unless a model-call span below it has usage; a span without
    usage counts only when no model-call span is below it and none above it has usage (a
    failed call, traced once or at several levels, counts once; a failed attempt that the
    gateway retried does not count beside the call that answered).
    """
    below_usage: set[str] = set()
    below_any: set[str] = set()
    above_usage: set[str] = set()
    for span_id, has_usage in calls.items():
        seen = {span_id}
        parent = parents.get(span_id)
        while parent is not None and parent not in seen:
            seen.add(parent)
            if parent in calls:
                below_any.add(parent)
                if has_usage:
                    below_usage.add(parent)
                if calls[parent]:
                    above_usage.add(span_id)
            parent = parents.get(parent)
    return {
        span_id
        for span_id, has_usage in calls.items()
        if span_id not in below_usage and (has_usage or (span_id not in below_any and span_id not in above_usage))
    }


CONVENTIONS: dict[str, tuple[str, ...]] = {
    "OpenTelemetry GenAI": (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.cost",
        "gen_ai.response.finish_reasons",
        "gen_ai.conversation.id",
        "gen_ai.tool.name",
        "gen_ai.agent.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt.N.*",
        "gen_ai.completion.N.*",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "user.id",
        "enduser.id",
    ),
    "OpenInference": (
        "openinference.span.kind",
        "llm.model_name",
        "llm.request.model_name",
        "llm.response.model_name",
        "embedding.model_name",
        "llm.provider",
        "llm.system",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.prompt_details.cache_read",
        "llm.token_count.prompt_details.cache_write",
        "llm.token_count.completion_details.reasoning",
        "llm.finish_reason",
        "llm.cost.total",
        "llm.input_messages.N.message.*",
        "llm.output_messages.N.message.*",
        "input.value",
        "output.value",
        "tool.name",
        "agent.name",
        "session.id",
        "user.id",
    ),
    "OpenLLMetry": (
        "traceloop.span.kind",
        "llm.request.type",
        "llm.request.model",
        "llm.response.model",
        "llm.vendor",
        "llm.usage.prompt_tokens",
        "llm.usage.completion_tokens",
        "llm.usage.reasoning_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.response.finish_reason",
        "llm.response.finish_reason",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "traceloop.association.properties.session_id",
        "traceloop.association.properties.user_id",
    ),
    "Vercel AI SDK": (
        "ai.operationId",
        "ai.model.id",
        "ai.model.provider",
        "ai.response.model",
        "ai.usage.inputTokens",
        "ai.usage.outputTokens",
        "ai.usage.promptTokens",
        "ai.usage.completionTokens",
        "ai.usage.cachedInputTokens",
        "ai.usage.reasoningTokens",
        "ai.response.finishReason",
        "ai.prompt",
        "ai.prompt.messages",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.toolCall.name",
        "ai.toolCall.args",
        "ai.toolCall.input",
        "ai.toolCall.result",
        "ai.toolCall.output",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.userId",
    ),
    "Langfuse": ("langfuse.session.id",),
    "MLflow tracing": (
        "mlflow.spanType",
        "mlflow.traceRequestId",
        "mlflow.llm.model",
        "mlflow.llm.provider",
        "mlflow.chat.tokenUsage",
        "mlflow.llm.cost",
        "mlflow.spanInputs",
        "mlflow.spanOutputs",
    ),
}
"""Per convention, the attributes read (``N``: a message's index), newest first: the README's table."""
