"""who made each correction

Revision ID: 0007
Revises: 0006
An entry records who made its latest correction, and each earlier version who wrote it.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.add_column(sa.Column('editor_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_entries_editor_id_users', 'users', ['editor_id'], ['id'])
    with op.batch_alter_table('entry_versions') as batch_op:
        batch_op.add_column(sa.Column('editor_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_entry_versions_editor_id_users', 'users', ['editor_id'], ['id'])


def downgrade():
    with op.batch_alter_table('entry_versions') as batch_op:
        batch_op.drop_constraint('fk_entry_versions_editor_id_users', type_='foreignkey')
        batch_op.drop_column('editor_id')
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_constraint('fk_entries_editor_id_users', type_='foreignkey')
        batch_op.drop_column('editor_id')
