"""Media files: the stored variants of uploaded images, cached for good (a file never changes).

Only names the app wrote are served, with the content type of the format it encoded. With a local
folder, nginx serves it in production (deploy/); with a bucket, this view reads from it (put a cache
or CDN in front).
"""
import re

from flask import Blueprint, Response, abort, send_from_directory

from . import storage

bp = Blueprint("media", __name__)
_KEY = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[0-9]{1,4}(\.webp|\.jpg|\.png)")


@bp.get("/media/<key>/<name>")
def file(key, name):
    """One variant of an uploaded image."""
    match = _NAME.fullmatch(name)
    if not _KEY.fullmatch(key) or match is None:
        abort(404, description="There is no such image.")
    if not storage.remote():
        response = send_from_directory(storage.folder() / key, name, mimetype=storage.CONTENT_TYPES[match[1]])
    else:
        data = storage.read(key, name)
        if data is None:
            abort(404, description="There is no such image.")
        response = Response(data, mimetype=storage.CONTENT_TYPES[match[1]])
    response.headers["Cache-Control"] = storage.IMMUTABLE
    return response
