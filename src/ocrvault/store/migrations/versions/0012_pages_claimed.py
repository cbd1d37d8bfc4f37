"""jobs.pages_claimed: how many of a running job's pages have been handed out

On a cluster a job's pages are read by any worker (jobs/spread.py): each takes the next
page with one conditional increment of this counter under the job's lease, so every page
is read once per claim. A new claim starts it again at 0.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pages_claimed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("pages_claimed")
