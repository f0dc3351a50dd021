"""story reading order: newest or oldest update first

Revision ID: 0011
Revises: 0010

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stories', sa.Column('order', sa.String(length=8), server_default=sa.text("'newest'"),
                                       nullable=False))


def downgrade():
    with op.batch_alter_table('stories') as batch_op:
        batch_op.drop_column('order')
