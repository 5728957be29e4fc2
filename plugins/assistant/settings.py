"""The assistant plugin's settings (``PLUGHOST_ASSISTANT_<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Settings(BaseModel):
    allow_remote: bool = False
    """Serve clients beyond this machine; requires ``PLUGHOST_SECURITY_TOKEN`` too."""
    endpoint: str | None = None
    """The gateway endpoint asked for explanations when a request names none."""
    conversation_hours: float = Field(24.0, gt=0)
    """How long a conversation is kept after its last message."""
