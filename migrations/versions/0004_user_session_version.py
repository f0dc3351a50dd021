"""user session version

Revision ID: 0004
Revises: 0003
A number in every session cookie's user id; raising it signs the account out everywhere
(on disabling it and on a password change).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('session_version', sa.Integer(), server_default=sa.text('0'),
                                     nullable=False))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('session_version')
