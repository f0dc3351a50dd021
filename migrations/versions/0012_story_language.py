"""story language: its pages' interface, lang, direction and dates

Revision ID: 0012
Revises: 0011

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stories', sa.Column('language', sa.String(length=8), server_default=sa.text("'en'"),
                                       nullable=False))


def downgrade():
    with op.batch_alter_table('stories') as batch_op:
        batch_op.drop_column('language')
