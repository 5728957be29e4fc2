"""OTLP metrics: the GenAI client metrics kept as series; every other metric answered as not stored.

``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` (histograms, by the
OpenTelemetry GenAI conventions) are stored one row per data point, with their attributes
(model, provider, token type...), so the console can chart them. Other metrics are counted in
``partial_success.rejected_data_points`` with a message saying plughost does not store them:
the exporter gets a success, never an error to retry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.context import current_workspace
from core.database import on_conflict_insert

from .decode import INT64_MAX, Decoded
from .present import attributes
from .store import Stored, insert_all
from .tables import metadata

KEPT = ("gen_ai.client.token.usage", "gen_ai.client.operation.duration")
HISTOGRAMS = ("histogram", "exponential_histogram")
ROWS_PER_STATEMENT = 2000
"""14 columns x 2000 rows: under PostgreSQL's 32,767 bind parameters."""

metric_points = Table(
    "plughost_otel_metric_points",
    metadata,
    Column("workspace", String(63), primary_key=True),
    Column("point_id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("service_name", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("unit", Text, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("bucket_counts", Text, nullable=False),
    Column("explicit_bounds", Text, nullable=False),
    Column("temporality", BigInteger, nullable=False),
    Index("plughost_otel_metric_points_series", "workspace", "name", "time_ns"),
)


def metric_rows(request: ExportMetricsServiceRequest, *, workspace: str, project: str) -> Decoded:
    """One row per data point of a kept metric (a histogram); the other metrics' points are rejected."""
    rows: list[dict[str, Any]] = []
    rejected = 0
    skipped: set[str] = set()
    for resource_metrics in request.resource_metrics:
        service = next(
            (a.value.string_value for a in resource_metrics.resource.attributes if a.key == "service.name"), ""
        )
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else ()
                if metric.name not in KEPT or kind not in HISTOGRAMS:
                    rejected += len(points)
                    skipped.add(metric.name)
                    continue
                for point in points:
                    if point.time_unix_nano > INT64_MAX or "\0" in service + project:
                        rejected += 1
                        continue
                    serialized = point.SerializeToString()
                    rows.append(
                        {
                            "workspace": workspace,
                            "point_id": hashlib.blake2b(
                                metric.name.encode() + b"\0" + service.encode() + b"\0" + serialized, digest_size=16
                            ).hexdigest(),
                            "name": metric.name,
                            "service_name": service or "unknown_service",
                            "project": project,
                            "start_ns": point.start_time_unix_nano,
                            "time_ns": point.time_unix_nano,
                            "unit": metric.unit,
                            "attributes": json.dumps(attributes(point.attributes), sort_keys=True),
                            "count": point.count,
                            "sum": point.sum,
                            **_buckets(point, kind),
                            "temporality": getattr(metric, kind).aggregation_temporality,
                        }
                    )
    reasons = (
        [
            f"plughost does not store these metrics, only {' and '.join(KEPT)} as histograms: "
            + ", ".join(sorted(skipped))
        ]
        if skipped
        else []
    )
    return Decoded(rows, rejected, reasons)


def _buckets(point: Any, kind: str) -> dict[str, str]:
    """A histogram point's buckets as JSON: explicit bounds and counts, or an exponential histogram's
    ``scale``, ``zero_count`` and ``positive`` / ``negative`` ``{offset, bucket_counts}``."""
    if kind == "histogram":
        return {
            "bucket_counts": json.dumps(list(point.bucket_counts)),
            "explicit_bounds": json.dumps(list(point.explicit_bounds)),
        }
    exponential = {
        "scale": point.scale,
        "zero_count": point.zero_count,
        **{
            side: {"offset": getattr(point, side).offset, "bucket_counts": list(getattr(point, side).bucket_counts)}
            for side in ("positive", "negative")
        },
    }
    return {"bucket_counts": json.dumps(exponential), "explicit_bounds": "[]"}


class MetricStore:
    """The GenAI metric series in SQL, every read and write scoped by workspace."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = on_conflict_insert(metric_points, engine.dialect.name).on_conflict_do_nothing()

    async def add(self, rows: list[dict[str, Any]]) -> Stored:
        """Store data points (the same point twice: once); returns once they are committed."""
        return await insert_all(self.engine, self._insert, rows, ROWS_PER_STATEMENT)

    async def series(self, name: str, service: str | None, limit: int) -> list[dict[str, Any]]:
        """The metric's latest data points in the current workspace, oldest first."""
        query = select(metric_points).where(
            metric_points.c.workspace == current_workspace(), metric_points.c.name == name
        )
        if service is not None:
            query = query.where(metric_points.c.service_name == service)
        query = query.order_by(metric_points.c.time_ns.desc(), metric_points.c.point_id).limit(limit)
        async with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in await connection.execute(query)]
        return [
            {
                "name": row["name"],
                "service_name": row["service_name"],
                "project": row["project"],
                "start_time_unix_nano": row["start_ns"],
                "time_unix_nano": row["time_ns"],
                "unit": row["unit"],
                "attributes": json.loads(row["attributes"]),
                "count": row["count"],
                "sum": row["sum"],
                "bucket_counts": json.loads(row["bucket_counts"]),
                "explicit_bounds": json.loads(row["explicit_bounds"]),
                "aggregation_temporality": row["temporality"],
            }
            for row in reversed(rows)
        ]
