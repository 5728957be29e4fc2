"""The gateway plugin's settings (``PLUGHOST_GATEWAY_<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class Settings(BaseModel):
    kek: SecretStr | None = None
    """Key-encryption key: 32 bytes, base64. Unset: a generated key file (mode 0600) in the data dir, with a warning."""
    allow_private: bool = False
    """Allow provider base URLs that are plain http or resolve to private, loopback or link-local addresses."""
    timeout_seconds: float = Field(120.0, gt=0)
    """The longest wait for a provider's next bytes (headers, body or the next stream event) before the next
    model is tried (504 when none is left); a stream that keeps sending may last longer."""
    config_cache_seconds: float = Field(5.0, ge=0)
    """How long a worker reuses endpoint configuration before reading it again (other workers' changes)."""
    tracing: bool = True
    """Record each call as a trace in the server's trace store (the otel plugin), when there is one."""
    trace_content: bool = False
    """Also record prompts and answers in the traces (``gen_ai.input.messages``, ``gen_ai.output.messages``)."""
    trace_queue_size: int = Field(10_000, ge=1)
    """Call traces waiting to be stored; beyond it they are dropped (counted and logged), never the calls."""
    trace_project: str = "default"
    """The trace store's project the gateway's traces go to."""
