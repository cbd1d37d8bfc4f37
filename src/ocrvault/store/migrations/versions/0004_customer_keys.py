"""customer-held keys (SSE-C) on jobs

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_wrapped_dek", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("customer_key_sha256", sa.String(length=44),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("customer_key_sha256")
        batch_op.drop_column("customer_wrapped_dek")
