"""Search terms waiting for the term index: a trace's terms are acknowledged here and indexed a moment later.

The term index (workspace, key, value) cost a page per term per trace at commit: 2.5 ms of SQLite's work for
a 50-span trace, most of an acknowledgement's. A trace's terms now go first into this table, keyed by trace
(a page or two a trace, 0.6 ms); the span store moves them into ``plughost_otel_terms`` in batches of
traces, which share the index's pages (see ``plugins/otel/term_index.py``). Searches read both tables, so
nothing acknowledged is ever missing from a search. PostgreSQL's writes keep indexing in the acknowledging
transaction: the table is made there too, empty, so that a trace's deletes read the same on both.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING = "plughost_otel_terms_pending"
COLUMNS = '"workspace", "key", "value", "trace_id"'


def upgrade() -> None:
    op.create_table(
        PENDING,
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "trace_id", "key", "value"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    """The waiting terms are indexed first: none is lost."""
    conflict = "OR IGNORE " if op.get_bind().dialect.name == "sqlite" else ""
    ignore = "" if conflict else " ON CONFLICT DO NOTHING"
    op.execute(f"INSERT {conflict}INTO plughost_otel_terms ({COLUMNS}) SELECT {COLUMNS} FROM {PENDING}{ignore}")
    op.drop_table(PENDING)
