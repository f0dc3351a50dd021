"""Uploaded images, with Pillow: checked by their content, oriented, stripped of metadata, scaled.

Accepted: JPEG, PNG, WebP and GIF (an animated GIF keeps its first frame). What is stored is
re-encoded from the decoded pixels, so nothing of the upload survives but the picture: no EXIF
(GPS position, camera serial, author), XMP, IPTC, comments or ICC profile, and no bytes a
polyglot file hid after or inside the image.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageOps, MpoImagePlugin, UnidentifiedImageError

from .models import MEDIA_WIDTHS, variant_height

# The only decoders Pillow may try. Its JPEG decoder opens the JPEGs of many phones (with a second,
# hidden image) as MPO, whose first image is kept; MpoImagePlugin is imported so that it can.
OPENERS = ("JPEG", "PNG", "WEBP", "GIF")
FORMATS = {*OPENERS, MpoImagePlugin.MpoImageFile.format}
ORIENTATION = 0x0112  # the EXIF tag
# Images processed at once by this process: each may take a few hundred MB while it is decoded.
_working = threading.BoundedSemaphore(2)


def run_blocking(function, *args):
    """Run CPU-heavy work; app.py swaps in a runner on a thread pool, so the server keeps serving meanwhile."""
    return function(*args)
WEBP_QUALITY, JPEG_QUALITY = 80, 84
_SRGB = ImageCms.createProfile("sRGB")


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
    """The first frame of a supported image, decoded no larger than the variants need; Refused otherwise."""
    if not data:
        raise Refused("The file is empty.", 415)
    too_many = Refused(f"The image has too many pixels: at most {max_pixels:,} are taken.", 413)
    try:
        with Image.open(io.BytesIO(data), formats=OPENERS) as probe:
            if probe.format not in FORMATS:
                raise Refused(f"A {probe.format} file is not taken; upload a JPEG, PNG, WebP or GIF.", 415)
            if probe.width * probe.height > max_pixels:  # from the header, before anything is decoded
                raise too_many
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=OPENERS)
        image.seek(0)
        if image.format in ("JPEG", "MPO"):
            # Decode at a fraction of the size when the largest variant is much smaller (a phone photo:
            # a quarter of the memory and time); the side that becomes the width must stay wide enough.
            turned = image.getexif().get(ORIENTATION) in (5, 6, 7, 8)
            image.draft("RGB", (1, MEDIA_WIDTHS[-1]) if turned else (MEDIA_WIDTHS[-1], 1))
        image.load()
    except Image.DecompressionBombError:
        raise too_many from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise Refused("This is not a JPEG, PNG, WebP or GIF image, or it is damaged.", 415) from None
    return image


def process(data: bytes, max_pixels: int) -> Processed:
    """Decode, orient by its EXIF, and encode each width (never wider than the upload) as WebP and JPEG
    (PNG when it has transparency)."""
    with _working:
        return run_blocking(_process, data, max_pixels)


def _process(data: bytes, max_pixels: int) -> Processed:
    image = _decode(data, max_pixels)
    ImageOps.exif_transpose(image, in_place=True)
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = _srgb(image, transparent)
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


def _srgb(image: Image.Image, transparent: bool) -> Image.Image:
    """The image in RGB(A), its colours converted to sRGB when it carries another profile (which is dropped)."""
    mode = "RGBA" if transparent else "RGB"
    profile = image.info.get("icc_profile")
    image = image.convert(mode)
    if profile:
        try:
            image = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(profile)), _SRGB,
                                              outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the colours stay as they are
    return image


def _encode(image: Image.Image, kind: str, **options) -> bytes:
    # No exif=, icc_profile= or xmp= arguments: the new file carries the pixels and nothing else.
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()
