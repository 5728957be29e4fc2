"""OTLP/gRPC ingest: ``TraceService/Export`` and ``LogsService/Export`` on grpc's asyncio server, run
from the plugin's lifespan.

Each stores through the same path as its ``POST /v1/<signal>`` (the signal's decoding, then
its store's ``add``: see :class:`.ingest.Signal`), so the semantics match: invalid spans are reported in
``partial_success``, the same span is stored once, the workspace and project
come from request metadata, a store that is down answers ``UNAVAILABLE`` (with
``RetryInfo``, which exporters honour) and bad data ``INVALID_ARGUMENT``.

- One limit bounds a message: ``grpc.max_receive_message_length``. gRPC checks it
  on the message as received and again while it inflates a gzip/deflate
  message, stopping there, so a compression bomb is never inflated past it.
- The request arrives as bytes and is parsed off the event loop, with the rows.
- Workers of one server share the port (``SO_REUSEPORT``); no other server joins them
  (:mod:`.grpc_address`). When another server or program holds it, start-up logs a
  warning naming the setting and HTTP still serves.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from grpc import aio

from core import run_bulk
from core.access import AccessRefused, IngestAuthorizer
from core.context import DEFAULT_WORKSPACE, WORKSPACE_HEADER, check_workspace
from core.server import is_loopback
from core.unavailable import RETRY_AFTER_SECONDS

from .decode import PROTOBUF, Decoded, PayloadError, rows_of
from .grpc_address import claim, server_identity
from .ingest import Signal, bulk_work
from .settings import Settings, split_address
from .store import Stored

logger = logging.getLogger("plughost.otel")

WORKSPACE_KEY = WORKSPACE_HEADER
ADDRESS_SETTING = "PLUGHOST_OTEL_GRPC_ADDRESS"
STOP_GRACE_SECONDS = 5.0
"""At shutdown, exports in flight get this long to finish."""


@dataclass(frozen=True)
class ReceiverConfig:
    """What the receiver needs, resolved from the settings of the server at start-up."""

    address: str
    max_message_bytes: int
    project_key: str
    authorize: IngestAuthorizer | None
    """What a plugin (security) checks of an export's credentials, as over HTTP; ``None``: nothing is."""
    workspaces: bool
    """Whether the workspace plugin is enabled: without it, as over HTTP, everything goes to ``default``."""
    owner_dir: Path
    """Where the server that serves the address is named (the data dir: see :mod:`.grpc_address`)."""
    identity: str
    """This server's, shared by its workers."""


def receiver_config(host: Any) -> ReceiverConfig:
    """The receiver's configuration: the otel settings, and credentials and workspaces as HTTP applies them."""
    settings: Settings = host.plugin_settings("otel")
    return ReceiverConfig(
        address=settings.grpc_address,
        max_message_bytes=min(settings.max_body_bytes, settings.max_decompressed_bytes),
        project_key=settings.project_header.lower(),
        authorize=host.plugins.manager.hook.plughost_ingest_authorizer(host=host),
        workspaces=host.is_enabled("workspace"),
        owner_dir=host.settings.data_dir,
        identity=server_identity(host.settings.workers),
    )


class ExportService:
    """One signal's ``Export`` method: metadata checked, then rows decoded off the loop, then stored."""

    def __init__(self, signal: Signal, config: ReceiverConfig) -> None:
        self.signal = signal
        self.config = config

    async def export(self, body: bytes, context: aio.ServicerContext) -> bytes:
        metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        workspace = metadata.get(WORKSPACE_KEY, DEFAULT_WORKSPACE) if self.config.workspaces else DEFAULT_WORKSPACE
        if self.config.authorize is not None:
            try:
                workspace = await self.config.authorize(metadata, workspace)
            except AccessRefused as refused:
                code = grpc.StatusCode.UNAUTHENTICATED if refused.status == 401 else grpc.StatusCode.PERMISSION_DENIED
                await context.abort(code, refused.detail)
        try:
            check_workspace(workspace)
        except ValueError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{error} (metadata {WORKSPACE_KEY})")
        project = metadata.get(self.config.project_key) or "default"
        with bulk_work(len(body)):  # grpc hands the message over inflated
            return await self._store_request(body, context, workspace, project)

    async def _store_request(self, body: bytes, context: aio.ServicerContext, workspace: str, project: str) -> bytes:
        """Decode ``body`` off the loop, store its rows, and answer; its rows are freed on return."""
        signal = self.signal
        try:
            decoded: Decoded = await run_bulk(
                lambda: rows_of(body, PROTOBUF, signal.request_type, signal.rows, workspace=workspace, project=project)
            )
        except PayloadError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        stored = await signal.store(decoded, len(body), "OTLP/gRPC")
        if not isinstance(stored, Stored):
            retry = RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS))
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry.SerializeToString()),))
            await context.abort(grpc.StatusCode.UNAVAILABLE, stored.message)
        assert isinstance(stored, Stored)  # abort raised otherwise
        return signal.answer(decoded, stored).SerializeToString()

    def handler(self) -> grpc.GenericRpcHandler:
        """Requests and answers as bytes: grpc neither parses nor serialises on the event loop."""
        export = grpc.unary_unary_rpc_method_handler(self.export)
        return grpc.method_handlers_generic_handler(self.signal.grpc_service, {"Export": export})


@contextlib.asynccontextmanager
async def serving(signals: tuple[Signal, ...], config: ReceiverConfig) -> AsyncIterator[aio.Server | None]:
    """Serve OTLP/gRPC on ``config.address`` for the life of the block; yields the server, or ``None``
    when it is turned off (empty address) or the port is held by another program (logged as a warning)."""
    if not config.address:
        yield None
        return
    host, _ = split_address(config.address)
    if not is_loopback(host):
        logger.warning("OTLP/gRPC listens on %s, beyond this machine, as asked (%s)", config.address, ADDRESS_SETTING)
    server = aio.server(
        handlers=[ExportService(signal, config).handler() for signal in signals],
        options=[
            ("grpc.so_reuseport", 1),  # the workers of one server share the port; no other server joins them
            ("grpc.max_receive_message_length", config.max_message_bytes),
        ],
    )
    async with claim(config.address, config.owner_dir, config.identity) as ours:
        problem = None if ours else "another server or program holds it"
        if problem is None:
            try:
                server.add_insecure_port(config.address)
            except RuntimeError as error:
                problem = f"{error}; another program may hold the port"
    if problem is not None:
        logger.warning(
            "OTLP/gRPC is off: could not listen on %s (%s). "
            "Set %s to a free host:port, or to empty to turn gRPC off. OTLP/HTTP is still served.",
            config.address,
            problem,
            ADDRESS_SETTING,
        )
        yield None
        return
    await server.start()
    logger.info("OTLP/gRPC listening on %s", config.address)
    try:
        yield server
    finally:
        await server.stop(STOP_GRACE_SECONDS)
