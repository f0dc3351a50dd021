"""Where media files live: a local folder (MEDIA_DIR, by default instance/media).

Files are written once under a random key and never changed, so they may be cached for good.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

CONTENT_TYPES = {".webp": "image/webp", ".jpg": "image/jpeg", ".png": "image/png"}


def folder() -> Path:
    """The media folder, made on first use."""
    path = Path(current_app.config["MEDIA_DIR"] or Path(current_app.instance_path) / "media")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(key: str, files: dict[str, bytes]) -> None:
    """Store a media item's files under its key (each written to a temporary name, then renamed)."""
    target = folder() / key
    target.mkdir()
    for name, data in files.items():
        partial = target / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, target / name)


def remove(key: str) -> None:
    """Delete a media item's files (when its row could not be saved)."""
    target = folder() / key
    for path in target.glob("*"):
        path.unlink()
    target.rmdir()
