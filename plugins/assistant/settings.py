"""The assistant plugin's settings (``PLUGHOST_ASSISTANT_<FIELD>``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    allow_remote: bool = False
    """Serve clients beyond this machine; requires authenticated requests (the security plugin's token or accounts)."""
    endpoint: str | None = None
    """The gateway endpoint asked for explanations when a request names none."""
    conversation_hours: float = Field(24.0, gt=0)
    """How long a conversation is kept after its last message."""
    prices: Any = None
    """Moved: LLM prices are ``PLUGHOST_PRICES``, shared by every plugin (this one refuses to start when set)."""
    max_spans: int = Field(200_000, ge=1)
    """The most spans a trace may have to be analysed: the analysis holds every span (about 3 KiB
    each), so a bigger trace is refused (422) instead of growing the server by gigabytes."""
    slow_llm_call_ms: float = Field(5000.0, gt=0)
    """An LLM call at least this long is reported as slow."""
    api_url: str | None = Field(None, pattern=r"^https?://")
    """The plughost server whose trace API batch-analysis jobs read (``GET /api/otel/traces``);
    read by the job from the worker's environment. Unset: this machine's server, on
    ``PLUGHOST_PORT`` (5000 when unset)."""

    @field_validator("prices")
    @classmethod
    def _moved(cls, prices: Any) -> None:
        if prices:
            raise ValueError(
                "the price table moved to PLUGHOST_PRICES (same JSON, in US dollars per million tokens), which the "
                "trace list, the gateway and the assistant share; and genai-prices now prices known models"
            )
