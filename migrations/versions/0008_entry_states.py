"""entry states: drafts, submissions and scheduled updates; presence at a story's desk

Revision ID: 0008
Revises: 0007
Every existing entry is published. Unpublished ones count their changes with negative revisions
(see models.Entry.rev); the scheduler finds due ones by (status, publish_at). desk_presence
holds who has a story's editor page open.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default=sa.text("'published'"),
                                      nullable=False))
        batch_op.add_column(sa.Column('publish_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=1000), server_default=sa.text("''"),
                                      nullable=False))
        batch_op.create_index('ix_entries_status_publish_at', ['status', 'publish_at'], unique=False)
    op.create_table(
        'desk_presence',
        sa.Column('sid', sa.String(length=64), nullable=False),
        sa.Column('story_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('doing', sa.String(length=32), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id']),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('sid'),
    )
    op.create_index('ix_desk_presence_story_id', 'desk_presence', ['story_id'], unique=False)


def downgrade():
    op.drop_index('ix_desk_presence_story_id', table_name='desk_presence')
    op.drop_table('desk_presence')
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_index('ix_entries_status_publish_at')
        batch_op.drop_column('review_note')
        batch_op.drop_column('publish_at')
        batch_op.drop_column('status')
