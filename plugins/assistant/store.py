"""Conversations about a trace, kept per workspace until they expire."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace

metadata = MetaData()

conversations = Table(
    "plughost_assistant_conversations",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("id", String(32), primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("messages", Text, nullable=False),  # JSON chat messages, system prompt first
    Column("expires_at", Float, nullable=False),
)


class ConversationStore:
    def __init__(self, engine: AsyncEngine, keep_seconds: float) -> None:
        self.engine = engine
        self.keep_seconds = keep_seconds

    async def create(self, trace_id: str, endpoint: str, messages: list[dict[str, str]]) -> str:
        conversation_id = uuid.uuid4().hex
        async with self.engine.begin() as connection:
            await connection.execute(delete(conversations).where(conversations.c.expires_at < time.time()))
            await connection.execute(
                insert(conversations).values(
                    workspace=current_workspace(),
                    id=conversation_id,
                    trace_id=trace_id,
                    endpoint=endpoint,
                    messages=json.dumps(messages),
                    expires_at=time.time() + self.keep_seconds,
                )
            )
        return conversation_id

    async def get(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation, or ``None`` when unknown in this workspace or expired."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(conversations).where(*self._key(conversation_id)))).first()
        if row is None or row.expires_at < time.time():
            return None
        return {
            "id": row.id,
            "trace_id": row.trace_id,
            "endpoint": row.endpoint,
            "messages": json.loads(row.messages),
            "expires_at": row.expires_at,
        }

    async def summaries(self) -> list[dict[str, Any]]:
        """The workspace's conversations that have not expired, newest first, without their messages."""
        query = (
            select(conversations.c.id, conversations.c.trace_id, conversations.c.endpoint, conversations.c.expires_at)
            .where(conversations.c.workspace == current_workspace(), conversations.c.expires_at >= time.time())
            .order_by(conversations.c.expires_at.desc())
        )
        async with self.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def save_messages(self, conversation_id: str, messages: list[dict[str, str]]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(conversations)
                .where(*self._key(conversation_id))
                .values(messages=json.dumps(messages), expires_at=time.time() + self.keep_seconds)
            )

    async def delete(self, conversation_id: str) -> bool:
        async with self.engine.begin() as connection:
            return bool((await connection.execute(delete(conversations).where(*self._key(conversation_id)))).rowcount)

    @staticmethod
    def _key(conversation_id: str) -> tuple[Any, ...]:
        return (conversations.c.workspace == current_workspace(), conversations.c.id == conversation_id)
