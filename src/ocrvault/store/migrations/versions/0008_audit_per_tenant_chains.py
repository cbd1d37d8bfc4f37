"""one audit hash chain per tenant (plus ``deployment``); the old single chain kept as ``legacy``

Before this revision every audited action of every tenant locked the one
``audit_chain`` row. Now each entry names its chain (``tenant:<id>``, or
``deployment`` for events of no tenant) and its position in it, and each chain has
its own head row in ``audit_chains``; ``seq`` stays as the log's overall order, but
the database assigns it, so it serialises nothing.

Existing entries are not re-chained. They become the closed chain ``legacy``, each
at the position that was its ``seq``, with its hash, link and signature untouched;
the old head and retention checkpoint become that chain's head and anchor, their
signatures untouched too. Verification checks them exactly as before (the old
canonical form and signed messages, see ``ocrvault.audit.chain``), so:

- nothing is re-signed: this migration runs without the keyring and could not sign
  anyway, and re-signing would launder any tampering done before the upgrade into
  freshly signed entries; an entry that was altered before still fails here;
- no new entry is ever appended to ``legacy``, and retention cuts it like any chain.

A fresh install (the old chain never signed, no entries) gets no legacy chain.

Downgrade is refused once any entry sits in a new chain: folding several chains
back into one would need re-signing, which is the laundering this avoids.

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

LEGACY = "legacy"
GENESIS = "0" * 64
# The columns both layouts share, in order.
COMMON = ("id", "at", "tenant_id", "environment", "actor_key_id", "actor_name", "action",
          "target_id", "client_ip", "request_id", "outcome", "reason", "detail", "prev_hash",
          "mac_version", "mac")


def _entry_columns(constrained: bool = True) -> list[sa.Column[Any] | sa.Constraint]:
    columns: list[sa.Column[Any] | sa.Constraint] = [
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=True),
        sa.Column("environment", sa.String(length=8), nullable=True),
        sa.Column("actor_key_id", sa.String(length=36), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("client_ip", sa.String(length=45), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("mac_version", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
    ]
    return [*columns, sa.UniqueConstraint("id")] if constrained else columns


def _names(table: str, *columns: str) -> sa.TableClause:
    return sa.table(table, *(sa.column(name) for name in columns))


def _copy(source: str, target: str, picks: dict[str, Any]) -> None:
    """INSERT INTO target (its columns) SELECT picks FROM source: a server-side copy."""
    into = _names(target, *picks, *COMMON)
    origin = _names(source, *{c for c in picks.values() if isinstance(c, str)}, *COMMON)
    chosen = [origin.c[c] if isinstance(c, str) else c for c in picks.values()]
    op.execute(sa.insert(into).from_select(
        [*picks, *COMMON], sa.select(*chosen, *(origin.c[name] for name in COMMON))))


def _set_aside_entries(holding: str, *layout: sa.Column[Any]) -> None:
    """Copy the entries to a plain holding table and drop the original (with its indexes,
    whose names the new table reuses)."""
    op.create_table(holding, *layout, *_entry_columns(constrained=False))
    _copy("audit_entries", holding, {column.name: column.name for column in layout})
    op.drop_table("audit_entries")


def _entry_indexes() -> None:
    op.create_index("ix_audit_entries_tenant_seq", "audit_entries", ["tenant_id", "seq"])
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])


def _chain_points(prefix: str) -> list[str]:
    """The head and anchor columns; the position column is ``<prefix>`` (seq or pos)."""
    return [f"head_{prefix}", "head_hash", "head_mac_version", "head_mac", f"anchor_{prefix}",
            "anchor_hash", "anchor_mac_version", "anchor_mac"]


def upgrade() -> None:
    _set_aside_entries("audit_entries_v1", sa.Column("seq", sa.Integer(), nullable=False))
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain", sa.String(length=48), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
        *_entry_columns(),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("chain", "pos", name="uq_audit_entries_chain_pos"),
        sqlite_autoincrement=True,
    )
    _entry_indexes()
    _copy("audit_entries_v1", "audit_entries",
          {"seq": "seq", "chain": sa.literal(LEGACY), "pos": "seq"})
    op.drop_table("audit_entries_v1")
    if op.get_bind().dialect.name == "postgresql":  # the copied seqs did not draw on it
        op.execute("SELECT setval(pg_get_serial_sequence('audit_entries', 'seq'), "
                   "(SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_entries), false)")

    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(length=48), nullable=False),
        sa.Column("head_pos", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("head_mac_version", sa.Integer(), nullable=True),
        sa.Column("head_mac", sa.String(length=64), nullable=True),
        sa.Column("anchor_pos", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_mac_version", sa.Integer(), nullable=True),
        sa.Column("anchor_mac", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("chain"),
    )
    # head_seq > 0: the old chain was ever appended to. Its head keeps its signature (or
    # its missing one, which verification then reports).
    old = _names("audit_chain", *_chain_points("seq"))
    op.execute(sa.insert(_names("audit_chains", "chain", *_chain_points("pos"))).from_select(
        ["chain", *_chain_points("pos")],
        sa.select(sa.literal(LEGACY), *(old.c[name] for name in _chain_points("seq")))
        .where(old.c.head_seq > 0)))
    op.drop_table("audit_chain")


def downgrade() -> None:
    bind = op.get_bind()
    chains = _names("audit_chains", "chain", *_chain_points("pos"))
    if bind.execute(sa.select(sa.func.count()).select_from(chains)
                    .where(chains.c.chain != LEGACY)).scalar_one():
        raise RuntimeError(
            "audit entries were written to per-tenant chains after 0007; folding them back "
            "into one chain would need re-signing them. Restore a backup taken before the "
            "upgrade instead.")
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("head_mac_version", sa.Integer(), nullable=True),
        sa.Column("head_mac", sa.String(length=64), nullable=True),
        sa.Column("anchor_seq", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_mac_version", sa.Integer(), nullable=True),
        sa.Column("anchor_mac", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    legacy = bind.execute(sa.select(*(chains.c[name] for name in _chain_points("pos")))
                          .where(chains.c.chain == LEGACY)).first()
    empty = (0, GENESIS, None, None, 0, GENESIS, None, None)
    op.bulk_insert(chain, [{"id": 1, **dict(zip(_chain_points("seq"), legacy or empty,
                                                 strict=True))}])
    op.drop_table("audit_chains")

    _set_aside_entries("audit_entries_v2", sa.Column("pos", sa.Integer(), nullable=False))
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        *_entry_columns(),
        sa.PrimaryKeyConstraint("seq"),
    )
    _entry_indexes()
    _copy("audit_entries_v2", "audit_entries", {"seq": "pos"})
    op.drop_table("audit_entries_v2")
