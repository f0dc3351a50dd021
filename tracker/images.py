"""Uploaded images, with Pillow: checked by their content, oriented, stripped of metadata, scaled.

Accepted: JPEG, PNG, WebP and GIF (an animated GIF keeps its first frame). What is stored is
re-encoded from the decoded pixels, so nothing of the upload survives but the picture: no EXIF
(GPS position, camera serial, author), XMP, IPTC, comments or ICC profile, and no bytes a
polyglot file hid after or inside the image.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .models import MEDIA_WIDTHS, variant_height

FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
WEBP_QUALITY, JPEG_QUALITY = 80, 84


class Refused(ValueError):
    """An upload that is not an image this app takes; `status` is 413 (too big) or 415 (not an image)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass
class Processed:
    """An image ready to store: its size, the fallback format, and the encoded variants by file name."""

    width: int
    height: int
    widths: list[int]
    fallback: str
    files: dict[str, bytes]


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """The first frame of a supported image, fully decoded; Refused otherwise."""
    if not data:
        raise Refused("The file is empty.", 415)
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit at all: refused
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in FORMATS:
                    raise Refused(f"A {probe.format} file is not taken; upload a JPEG, PNG, WebP or GIF.", 415)
                probe.verify()
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(f"The image has too many pixels: at most {max_pixels:,} are taken.", 413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise Refused("This is not a JPEG, PNG, WebP or GIF image, or it is damaged.", 415) from None
    return image


def process(data: bytes, max_pixels: int) -> Processed:
    """Decode, orient by its EXIF, and encode each width (never wider than the upload) as WebP and JPEG
    (PNG when it has transparency)."""
    image = _decode(data, max_pixels)
    image = ImageOps.exif_transpose(image)
    transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if transparent else "RGB")
    # Encoders take some metadata (a JPEG comment, say) from here unasked: keep only the pixels.
    image.info = {}
    largest = min(image.width, MEDIA_WIDTHS[-1])
    widths = [width for width in MEDIA_WIDTHS if width < largest] + [largest]
    fallback = "png" if transparent else "jpeg"
    files: dict[str, bytes] = {}
    for width in widths:
        scaled = image if width == image.width else image.resize(
            (width, variant_height(image.width, image.height, width)), Image.Resampling.LANCZOS)
        files[f"{width}.webp"] = _encode(scaled, "WEBP", quality=WEBP_QUALITY, method=4)
        if transparent:
            files[f"{width}.png"] = _encode(scaled, "PNG", optimize=True)
        else:
            files[f"{width}.jpg"] = _encode(scaled, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return Processed(largest, variant_height(image.width, image.height, largest), widths, fallback, files)


def _encode(image: Image.Image, kind: str, **options) -> bytes:
    # No exif=, icc_profile= or xmp= arguments: the new file carries the pixels and nothing else.
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()
