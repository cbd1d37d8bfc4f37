"""jobs.key_epoch: the tenant epoch key a job's data key is wrapped under

Tenant keys and epoch keys live in the key store, not in the database, so that a backup of
the database holds none of them. Existing rows keep their keyring-wrapped data keys (the
``OCK`` format still opens, key_epoch NULL); ``ocrvault keys rewrap`` moves them under
their tenant's epoch keys.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_epoch", sa.Integer(), nullable=True))
        # The scheduler asks, per tenant and epoch, whether anything still needs its key.
        batch_op.create_index("ix_jobs_tenant_key_epoch", ["tenant_id", "key_epoch"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_key_epoch")
        batch_op.drop_column("key_epoch")
