"""Exit 0 when the database at the URL given as the only argument accepts a connection."""
import sys

from sqlalchemy import create_engine, text

try:
    with create_engine(sys.argv[1], connect_args={"connect_timeout": 3}).connect() as conn:
        conn.execute(text("SELECT 1"))
except Exception as exc:  # any failure means: not reachable
    print(f"not reachable: {exc.__class__.__name__}", file=sys.stderr)
    sys.exit(1)
