"""The otel plugin's settings (``PLUGHOST_OTEL_<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

MiB = 1024 * 1024


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ``ValueError`` saying what is wrong."""
    host, colon, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port (for example 127.0.0.1:4317)")
    return host, int(port)


class Settings(BaseModel):
    max_body_bytes: int = Field(8 * MiB, ge=1024)
    """Largest OTLP request body as received (compressed or not); larger ones get 413."""
    max_decompressed_bytes: int = Field(32 * MiB, ge=1024)
    """Largest body after gzip/deflate; inflation stops there with 413 (a gzip bomb is never inflated further)."""
    decompression_budget_bytes: int = Field(128 * MiB, ge=1024)
    """Memory that all requests being inflated at once may reserve together (each reserves what its
    body can inflate to, at most ``max_decompressed_bytes``); the others wait their turn."""
    decompression_wait_seconds: float = Field(5.0, ge=0)
    """How long a request waits for room in that budget before it gets 503 with ``Retry-After``."""
    project_header: str = "x-plughost-project"
    """Request header naming the project (experiment) that spans are grouped under; ``default`` when absent."""
    grpc_address: str = "127.0.0.1:4317"
    """Where OTLP/gRPC (``TraceService/Export``) listens, as ``host:port``; empty turns it off."""
    retention_days: int | None = Field(None, ge=1)
    """When set (and the jobs plugin is installed), an ``otel.retention`` schedule deletes, every day at
    03:17 UTC, each trace of the default workspace that ended more than this many days ago."""

    @field_validator("grpc_address")
    @classmethod
    def _host_and_port(cls, address: str) -> str:
        if address:
            split_address(address)
        return address
