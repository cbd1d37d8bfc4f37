"""per-environment retention policies; cascaded revocation and job visibility on keys

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Policies written before environments existed were the live ones (test keys could
    # only overwrite them: issue 10), so they stay live. A new table, because the primary
    # key changes (portable across SQLite and PostgreSQL, whatever the old key's name).
    _policies_table("retention_policies_new", with_environment=True)
    op.execute("INSERT INTO retention_policies_new (tenant_id, scope, environment, seconds, "
               "updated_at, updated_by) SELECT tenant_id, scope, 'live', seconds, updated_at, "
               "updated_by FROM retention_policies")
    op.drop_table("retention_policies")
    op.rename_table("retention_policies_new", "retention_policies")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("revoked_with", sa.String(length=36), nullable=True))
        # Existing keys keep seeing what they saw: every job of their tenant.
        batch_op.add_column(sa.Column("job_visibility", sa.String(length=8), nullable=False,
                                      server_default="tenant"))
        batch_op.create_index("ix_api_keys_created_by", ["created_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_created_by")
        for column in ("job_visibility", "revoked_with", "revoked_by"):
            batch_op.drop_column(column)
    _policies_table("retention_policies_old", with_environment=False)
    op.execute("INSERT INTO retention_policies_old (tenant_id, scope, seconds, updated_at, "
               "updated_by) SELECT tenant_id, scope, seconds, updated_at, updated_by "
               "FROM retention_policies WHERE environment = 'live'")
    op.drop_table("retention_policies")
    op.rename_table("retention_policies_old", "retention_policies")


def _policies_table(name: str, *, with_environment: bool) -> None:
    environment = [sa.Column("environment", sa.String(length=8), nullable=False)]
    op.create_table(
        name,
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=36), nullable=False),
        *(environment if with_environment else []),
        sa.Column("seconds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "scope",
                                *(["environment"] if with_environment else [])),
    )
