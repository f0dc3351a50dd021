"""media: uploaded images, the images of each entry, a story's uploaded lead image

Revision ID: 0009
Revises: 0008

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'media',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('widths', sa.String(length=64), nullable=False),
        sa.Column('fallback', sa.String(length=8), nullable=False),
        sa.Column('alt', sa.String(length=500), nullable=False),
        sa.Column('caption', sa.String(length=1000), nullable=False),
        sa.Column('credit', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_table(
        'entry_media',
        sa.Column('entry_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['entries.id']),
        sa.ForeignKeyConstraint(['media_id'], ['media.id']),
        sa.PrimaryKeyConstraint('entry_id', 'position'),
    )
    op.create_index('ix_entry_media_media_id', 'entry_media', ['media_id'], unique=False)
    with op.batch_alter_table('entries') as batch_op:
        batch_op.add_column(sa.Column('has_media', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    with op.batch_alter_table('stories') as batch_op:
        batch_op.add_column(sa.Column('image_media_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_stories_image_media_id_media', 'media', ['image_media_id'], ['id'])


def downgrade():
    with op.batch_alter_table('stories') as batch_op:
        batch_op.drop_constraint('fk_stories_image_media_id_media', type_='foreignkey')
        batch_op.drop_column('image_media_id')
    with op.batch_alter_table('entries') as batch_op:
        batch_op.drop_column('has_media')
    op.drop_index('ix_entry_media_media_id', table_name='entry_media')
    op.drop_table('entry_media')
    op.drop_table('media')
