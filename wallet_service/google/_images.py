"""The program logo as Google Wallet shows it (spec §2.4): a square PNG of at least 660 px,
which Google masks into a circle.

Pure: picture bytes in, PNG bytes out. The logo a merchant uploads is sized for Apple's
wide logo slot (160 × 50 pt, 480 × 150 px at @3x); Google wants a square, so the logo is
scaled to fit the circle's safe area and set on the program's background colour, which
then fills the circle around it as it fills the card.
"""

from __future__ import annotations

import io
import math

from PIL import Image
from PIL import ImageColor

from ..errors import InvalidInput

__all__ = ["LOGO_SAFE_SHARE", "LOGO_SIZE", "square_logo"]

#: Google's minimum side for ``programLogo`` (§2.4).
LOGO_SIZE = 660
#: The share of the side the logo's diagonal may span: Google masks the square into a
#: circle, so the logo's corners must stay inside it, with a margin.
LOGO_SAFE_SHARE = 0.8


def square_logo(data: bytes, background: str, *, size: int = LOGO_SIZE) -> bytes:
    """A ``size`` × ``size`` PNG: the picture in ``data`` (PNG or JPEG), scaled so that its
    diagonal spans ``LOGO_SAFE_SHARE`` of the side, centred on ``background`` (``#rrggbb``).
    Transparent parts show the background.

    :raises InvalidInput: ``data`` is not a picture Pillow reads, ``background`` not a
        colour, or ``size`` below Google's 660 px.
    """
    if size < LOGO_SIZE:
        raise InvalidInput(f"Google wants a logo of at least {LOGO_SIZE} px (spec §2.4)",
                           field="size")
    try:
        fill = ImageColor.getrgb(background)
    except ValueError:
        raise InvalidInput("background must be a colour such as #1a73e8",
                           field="background") from None
    try:
        with Image.open(io.BytesIO(data)) as source:
            source.load()
            picture = source.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"the logo is not a readable picture: {exc}", field="logo") from None
    width, height = picture.size
    scale = size * LOGO_SAFE_SHARE / math.hypot(width, height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = picture.resize(fitted, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), fill[:3])
    canvas.paste(picture, ((size - fitted[0]) // 2, (size - fitted[1]) // 2), picture)
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
