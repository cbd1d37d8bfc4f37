"""job progress (pages done) and the page selection as asked, with what it missed

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pages_done", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("pages_requested", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("pages_missing", sa.String(length=2000), nullable=True))
        # GET /v1/jobs pages newest first within a tenant.
        batch_op.create_index("ix_jobs_tenant_created", ["tenant_id", "created_at", "id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_created")
        for column in ("pages_missing", "pages_requested", "pages_done"):
            batch_op.drop_column(column)
