"""story tags and entry bylines

Revision ID: 0003
Revises: 0002
Story tags (comma-separated) and an entry byline for writers without an account (Markdown import).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('stories', sa.Column('tags', sa.Text(), server_default=sa.text("''"), nullable=False))
    op.add_column('entries', sa.Column('byline', sa.String(length=100), server_default=sa.text("''"),
                                       nullable=False))


def downgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_column('byline')
    with op.batch_alter_table('stories') as batch_op:
        batch_op.drop_column('tags')
