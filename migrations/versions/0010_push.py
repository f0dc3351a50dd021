"""push: readers' Web Push subscriptions to a story's key events, and when each entry was pushed

Revision ID: 0010
Revises: 0009
Key events published before notifications existed count as pushed, so correcting one later
notifies nobody (see tracker.push.claim).

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'push_subscriptions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('story_id', sa.Integer(), nullable=False),
        sa.Column('endpoint', sa.String(length=1000), nullable=False),
        sa.Column('p256dh', sa.String(length=100), nullable=False),
        sa.Column('auth', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['story_id'], ['stories.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('endpoint', 'story_id'),
    )
    op.create_index('ix_push_subscriptions_story_id', 'push_subscriptions', ['story_id'], unique=False)
    with op.batch_alter_table('entries') as batch_op:
        batch_op.add_column(sa.Column('pushed_at', sa.DateTime(), nullable=True))
    entries = sa.table('entries', sa.column('key', sa.Boolean()), sa.column('status', sa.String()),
                       sa.column('updated_at', sa.DateTime()), sa.column('pushed_at', sa.DateTime()))
    op.execute(entries.update().where(entries.c.key == sa.true(), entries.c.status == 'published')
               .values(pushed_at=entries.c.updated_at))


def downgrade():
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_column('pushed_at')
    op.drop_index('ix_push_subscriptions_story_id', table_name='push_subscriptions')
    op.drop_table('push_subscriptions')
