"""retention policies, per-kind expiry of job parts, audit entry detail

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("seconds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "scope"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("input_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("outputs_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("metadata_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("next_expiry_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_jobs_next_expiry_at", ["next_expiry_at"], unique=False)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))
    # Jobs from before per-kind retention: everything they hold goes at their old expiry.
    op.execute(
        "UPDATE jobs SET input_expires_at = expires_at, outputs_expires_at = expires_at, "
        "metadata_expires_at = expires_at, next_expiry_at = expires_at"
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_next_expiry_at")
        for column in ("next_expiry_at", "metadata_expires_at", "outputs_expires_at",
                       "input_expires_at", "retention"):
            batch_op.drop_column(column)
    op.drop_table("retention_policies")
