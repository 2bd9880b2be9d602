"""Store-card images: any PNG or JPEG in, Apple's exact sizes out (§1.4).

Upload once with :func:`prepare_image`, keep the returned files, and pass them to
:class:`~wallet_service.apple.model.Design` as ``images``; passes then reuse the bytes.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from functools import lru_cache

from PIL import Image
from PIL import ImageDraw
from PIL import ImageOps

from ..errors import InputTooLarge
from ..errors import InvalidInput
from ..errors import ValidationFailed
from .model import SCALES

#: Point sizes (width, height) per kind, and whether the picture is cropped to fill the box
#: ("cover", for the strip behind the balance) or fitted inside it ("contain").
IMAGE_SPECS: Mapping[str, tuple[tuple[int, int], str]] = {
    "icon": ((29, 29), "contain"),
    "logo": ((160, 50), "contain"),
    # 375 x 123 pt: Apple's strip size for store cards that are not gift cards or coupons.
    "strip": ((375, 123), "cover"),
}

#: Uploads larger than this are refused before decoding.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: Decoded images with more pixels than this are refused (decompression bombs).
MAX_IMAGE_PIXELS = 40_000_000
#: Images with a longer side are refused from their header: a 39,000,000 × 1 picture has
#: few pixels but costs seconds and gigabytes to resample.
MAX_IMAGE_SIDE = 8192
#: ``cover`` kinds (the strip) are cropped to their box: at least this share of the
#: picture must remain.
MIN_COVER_SHARE = 0.1
#: Large pictures are shrunk by whole factors (JPEG while decoding) down to this multiple
#: of the largest size made, before the Lanczos resampling (Pillow's ``reducing_gap``).
REDUCING_GAP = 2
#: EXIF orientations that turn the picture by 90°.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})

_ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG"}


def prepare_image(kind: str, data: bytes) -> dict[str, bytes]:
    """Convert an uploaded picture into the @1x/@2x/@3x PNG files of ``kind``.

    ``icon`` becomes exactly 29×29 pt (transparent padding keeps the whole picture); ``logo``
    is fitted inside 160×50 pt keeping its aspect ratio (each scale an exact multiple of @1x);
    ``strip`` is cropped to fill exactly 375×123 pt. Icon and logo keep transparency.
    Returns ``{"logo.png": ..., "logo@2x.png": ..., "logo@3x.png": ...}``.

    :raises InvalidInput: unknown kind, or the data is not a usable PNG/JPEG (truncated,
        another format); ``field`` is ``kind``.
    :raises InputTooLarge: too many bytes, too many pixels, a side over ``MAX_IMAGE_SIDE``.
    :raises ValidationFailed: too elongated for ``kind``: a logo or icon thinner than a pixel
        once fitted, a strip of which less than ``MIN_COVER_SHARE`` would show once cropped.
    """
    if kind not in IMAGE_SPECS:
        raise InvalidInput(f"unknown image kind {kind!r}; use icon, logo or strip", field=kind)
    picture = _decode(kind, data)
    (width, height), mode = IMAGE_SPECS[kind]
    if mode == "contain":
        base = _contained_size(picture.size, (width, height))
    else:
        base = (width, height)
    files = {}
    for scale, suffix in SCALES:
        target = (base[0] * scale, base[1] * scale)
        if mode == "cover":
            resized = ImageOps.fit(picture, target, Image.Resampling.LANCZOS)
        elif kind == "icon":
            resized = ImageOps.pad(picture, target, Image.Resampling.LANCZOS, color=(0, 0, 0, 0))
        else:
            resized = picture.resize(target, Image.Resampling.LANCZOS)
        files[f"{kind}{suffix}.png"] = _png(resized)
    return files


def _decode(kind: str, data: bytes) -> Image.Image:
    if not isinstance(data, bytes | bytearray) or not data:
        raise InvalidInput(f"{kind} image is empty", field=kind)
    if len(data) > MAX_IMAGE_BYTES:
        raise InputTooLarge(
            f"{kind} image is too large: {len(data)} bytes, the limit is {MAX_IMAGE_BYTES}",
            field=kind,
        )
    with warnings.catch_warnings():
        # Pillow warns, then raises, above its own global limit; ours is lower and explicit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            picture = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise _too_many_pixels(kind, None) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidInput(
                f"{kind} is not a PNG or JPEG image (the data could not be read as an image)",
                field=kind,
            ) from exc
        if picture.format not in _ACCEPTED_FORMATS:
            raise InvalidInput(
                f"{kind} image is {picture.format}; only PNG and JPEG are accepted", field=kind
            )
        if picture.width * picture.height > MAX_IMAGE_PIXELS:
            raise _too_many_pixels(kind, picture.size)
        _check_shape(kind, picture.size)
        upright_size = _upright_size(picture)
        _check_aspect(kind, upright_size)
        # JPEG decodes at 1/2, 1/4 or 1/8 scale when that is enough (other formats: no-op).
        needed_w, needed_h = _needed_size(kind, upright_size)
        turned = upright_size != picture.size
        picture.draft(None, (needed_h, needed_w) if turned else (needed_w, needed_h))
        try:
            picture.load()
        except Image.DecompressionBombError:
            raise _too_many_pixels(kind, picture.size) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidInput(
                f"{kind} image is broken or truncated and cannot be decoded ({exc})", field=kind
            ) from exc
    upright = ImageOps.exif_transpose(picture)
    factor = min(upright.width // needed_w, upright.height // needed_h)
    if factor > 1:
        upright = upright.reduce(factor)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    return upright.convert("RGBA" if has_alpha or kind == "icon" else "RGB")


def _check_shape(kind: str, size: tuple[int, int]) -> None:
    if max(size) > MAX_IMAGE_SIDE:
        raise InputTooLarge(
            f"{kind} image is {size[0]}×{size[1]} pixels; no side may be longer than "
            f"{MAX_IMAGE_SIDE}", field=kind)


def _upright_size(picture: Image.Image) -> tuple[int, int]:
    """The size once the EXIF orientation is applied (read from the header)."""
    try:
        orientation = picture.getexif().get(0x0112)
    except (OSError, SyntaxError, ValueError, TypeError):
        orientation = None
    return (picture.height, picture.width) if orientation in _QUARTER_TURNS else picture.size


def _check_aspect(kind: str, size: tuple[int, int]) -> None:
    """Refuse a picture ``kind`` cannot show: fitted into its box it would be thinner than
    a pixel at @3x, or cropped to fill it, less than ``MIN_COVER_SHARE`` of it would show."""
    (box_w, box_h), mode = IMAGE_SPECS[kind]
    width, height = size
    top = max(scale for scale, _suffix in SCALES)
    if mode == "cover":
        ratio, box_ratio = width / height, box_w / box_h
        if min(ratio / box_ratio, box_ratio / ratio) < MIN_COVER_SHARE:
            raise ValidationFailed(
                f"{kind} image is {width}×{height} pixels, too elongated for {box_w}×{box_h} pt: "
                f"cropped to fill it, less than {MIN_COVER_SHARE:.0%} of the picture would show",
                field=kind)
        return
    fitted = min(box_w * top / width, box_h * top / height)
    if min(width, height) * fitted < 1:
        raise ValidationFailed(
            f"{kind} image is {width}×{height} pixels, too elongated for {box_w}×{box_h} pt: "
            "fitted inside it, it would be less than a pixel thick", field=kind)


def _needed_size(kind: str, size: tuple[int, int]) -> tuple[int, int]:
    """The smallest size (width, height) a ``size`` picture may be shrunk to and still give
    the largest scale of ``kind`` ``REDUCING_GAP`` times the pixels it shows."""
    (box_w, box_h), mode = IMAGE_SPECS[kind]
    top = max(scale for scale, _suffix in SCALES) * REDUCING_GAP
    if mode == "cover":
        return (box_w * top, box_h * top)
    fitted = min(box_w * top / size[0], box_h * top / size[1])
    return (max(1, math.ceil(size[0] * fitted)), max(1, math.ceil(size[1] * fitted)))


def _too_many_pixels(kind: str, size: tuple[int, int] | None) -> InvalidInput:
    dimensions = f" ({size[0]}×{size[1]})" if size else ""
    return InputTooLarge(
        f"{kind} image has too many pixels{dimensions}, the limit is {MAX_IMAGE_PIXELS} "
        "(possible decompression bomb)",
        field=kind,
    )


def _contained_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The @1x size that fits ``size`` into ``box`` keeping the aspect ratio (for logos)."""
    if box[0] == box[1]:
        return box  # icon: square canvas, picture padded inside
    ratio = min(box[0] / size[0], box[1] / size[1])
    return (
        max(1, min(box[0], round(size[0] * ratio))),
        max(1, min(box[1], round(size[1] * ratio))),
    )


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@lru_cache(maxsize=512)
def stamp_strip(count: int, goal: int, colour: str | None) -> dict[str, bytes]:
    """The strip images of a stamp card with ``count`` of ``goal`` stamps, at @1x–@3x
    (375×123 pt, §1.4). Cached per count, so every card at 3/6 shares one set."""
    fill = colour or "#f0c478"
    files = {}
    for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
        width, height = 375 * scale, 123 * scale
        image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        per_row = min(goal, 10)
        rows = (goal + per_row - 1) // per_row
        size = min(width // (per_row + 1), height // (rows + 1))
        gap_x = (width - per_row * size) / (per_row + 1)
        gap_y = (height - rows * size) / (rows + 1)
        for i in range(goal):
            row, col = divmod(i, per_row)
            x = gap_x + col * (size + gap_x)
            y = gap_y + row * (size + gap_y)
            box = (x, y, x + size, y + size)
            if i < count:
                draw.ellipse(box, fill=fill)
            else:
                draw.ellipse(box, outline=fill, width=max(2, scale * 2))
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        files[f"strip{suffix}.png"] = out.getvalue()
    return files
