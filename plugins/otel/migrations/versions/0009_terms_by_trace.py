"""Search terms keyed by trace, found by term through an index whose new entries go at the end of the term's.

Under 0002's key (workspace, key, value, trace_id) each of a new trace's ~100 terms went to a random place
among that term's rows (trace ids are random): a page written per term per trace, and traces committed
together shared no page. Keyed (workspace, trace_id, key, value), a trace's terms sit together: checking a
trace for a term and deleting a trace's terms are one probe each, and a new trace's terms fill a page or two.
The index (workspace, key, value) finds a term's traces; its entries of one term are in the order of their
rows in the table, which grows as rows are added, so a new trace's term goes where the previous trace's went.
On PostgreSQL it includes the trace id (read from the index alone, as the old key allowed).

SQLite cannot change a primary key: the rows are copied, in one statement and in the new key's order, into
a table made with it, and the index is built after (one sort). PostgreSQL rebuilds its key index in place.
Either way nothing is read into Python.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TERMS = "plughost_otel_terms"
COLUMNS = ("workspace", "key", "value", "trace_id")
BY_TRACE = ["workspace", "trace_id", "key", "value"]
BY_TERM = ["workspace", "key", "value", "trace_id"]
TERM_INDEX = "plughost_otel_terms_term"
TRACE_INDEX = "plughost_otel_terms_trace"  # 0002's: the key by term first could not find a trace's terms


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        copy_with_key(BY_TRACE)
    else:
        replace_key(BY_TRACE)
        op.drop_index(TRACE_INDEX, TERMS)
    op.create_index(TERM_INDEX, TERMS, ["workspace", "key", "value"], postgresql_include=["trace_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        copy_with_key(BY_TERM)
    else:
        replace_key(BY_TERM)
        op.drop_index(TERM_INDEX, TERMS)
    op.create_index(TRACE_INDEX, TERMS, ["workspace", "trace_id"])


def copy_with_key(primary_key: list[str]) -> None:
    """SQLite: the terms table, rows and all, made again with ``primary_key`` (its indexes are dropped)."""
    copied = f"{TERMS}_rekeyed"
    op.create_table(
        copied,
        sa.Column("workspace", sa.String(63), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint(*primary_key),
    )
    columns = ", ".join(f'"{name}"' for name in COLUMNS)
    order = ", ".join(f'"{name}"' for name in primary_key)
    op.execute(f"INSERT INTO {copied} ({columns}) SELECT {columns} FROM {TERMS} ORDER BY {order}")
    op.drop_table(TERMS)
    op.rename_table(copied, TERMS)


def replace_key(primary_key: list[str]) -> None:
    """PostgreSQL: the terms table's primary key made again on ``primary_key``."""
    op.drop_constraint(f"{TERMS}_pkey", TERMS, type_="primary")
    op.create_primary_key(f"{TERMS}_pkey", TERMS, primary_key)
