"""people: display names, and API tokens that belong to a person

Revision ID: 0006
Revises: 0005
Every account gets a display name for bylines (empty: the username is shown). A token may
belong to an account: API writes with it act as that person. Existing tokens belong to nobody
and keep editor rights.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('display_name', sa.String(length=100), server_default=sa.text("''"),
                                     nullable=False))
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_api_tokens_user_id_users', 'users', ['user_id'], ['id'])


def downgrade():
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.drop_constraint('fk_api_tokens_user_id_users', type_='foreignkey')
        batch_op.drop_column('user_id')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('display_name')
