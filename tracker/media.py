"""Media files: the stored variants of uploaded images, cached for good (a file never changes).

Only names the app wrote are served, with the content type of the format it encoded; nginx serves
the same folder in production (deploy/).
"""
import re

from flask import Blueprint, abort, send_from_directory

from . import storage

bp = Blueprint("media", __name__)
_KEY = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[0-9]{1,4}(\.webp|\.jpg|\.png)")
YEAR = 365 * 24 * 3600


@bp.get("/media/<key>/<name>")
def file(key, name):
    """One variant of an uploaded image."""
    match = _NAME.fullmatch(name)
    if not _KEY.fullmatch(key) or match is None:
        abort(404, description="There is no such image.")
    response = send_from_directory(storage.folder() / key, name, mimetype=storage.CONTENT_TYPES[match[1]],
                                   max_age=YEAR)
    response.cache_control.public = response.cache_control.immutable = True
    return response
