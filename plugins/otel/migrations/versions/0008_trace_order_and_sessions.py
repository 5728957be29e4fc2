"""The trace list in any order, and sessions: an index per sort key, each trace's session, backfilled.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from plugins.otel.conventions import SESSION
from plugins.otel.facts import MAX_TERM_CHARS

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TRACES = "plughost_otel_traces"
ORDERS = {
    "plughost_otel_traces_duration": ["workspace", "duration_ns", "trace_id"],
    "plughost_otel_traces_tokens": ["workspace", sa.text("(input_tokens + output_tokens)"), "trace_id"],
    "plughost_otel_traces_spans": ["workspace", "span_count", "trace_id"],
    "plughost_otel_traces_errors": ["workspace", "error_count", "trace_id"],
    # the summaries' cost (0007): unpriced traces sort as -1 on both stores
    "plughost_otel_traces_cost": ["workspace", sa.text("(COALESCE(cost_usd, -1))"), "trace_id"],
}
ROWS_PER_STATEMENT = 1000


def upgrade() -> None:
    op.add_column(TRACES, sa.Column("session_id", sa.Text))
    for name, columns in ORDERS.items():
        op.create_index(name, TRACES, columns)
    backfill(op.get_bind())
    op.create_index("plughost_otel_traces_session", TRACES, ["workspace", "session_id", "start_ns", "trace_id"])


def backfill(connection: sa.Connection) -> None:
    """Each stored trace's session: the least value of a session attribute on any of its spans, read from
    the search terms (every scalar attribute up to 256 characters, MLflow's decoded), a workspace and key at a time."""
    terms = sa.table("plughost_otel_terms", sa.column("workspace"), sa.column("key"), sa.column("value"), sa.column("trace_id"))
    traces = sa.table(TRACES, sa.column("workspace"), sa.column("trace_id"), sa.column("session_id"))
    workspaces = [row[0] for row in connection.execute(sa.select(traces.c.workspace).distinct())]
    for workspace in workspaces:
        found: dict[str, str] = {}
        for key in SESSION:
            for trace_id, value in connection.execute(
                sa.select(terms.c.trace_id, terms.c.value).where(terms.c.workspace == workspace, terms.c.key == key)
            ):
                if value and len(value) <= MAX_TERM_CHARS and (trace_id not in found or value < found[trace_id]):
                    found[trace_id] = value
        rows = [{"w": workspace, "t": trace_id, "s": session} for trace_id, session in found.items()]
        update = (
            sa.update(traces)
            .where(traces.c.workspace == sa.bindparam("w"), traces.c.trace_id == sa.bindparam("t"))
            .values(session_id=sa.bindparam("s"))
        )
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            connection.execute(update, rows[start : start + ROWS_PER_STATEMENT])


def downgrade() -> None:
    op.drop_index("plughost_otel_traces_session", TRACES)
    for name in ORDERS:
        op.drop_index(name, TRACES)
    op.drop_column(TRACES, "session_id")
