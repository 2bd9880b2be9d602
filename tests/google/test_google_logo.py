"""The program logo as Google Wallet takes it: square, at least 660 px, the logo inside the
circle Google masks it with, on the program's colour (spec §2.4)."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image
from PIL import ImageChops

from wallet_service.errors import InvalidInput
from wallet_service.google import LOGO_SIZE
from wallet_service.google import square_logo


def png(size: tuple[int, int], colour: tuple[int, int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def opaque_box(picture: Image.Image, background: tuple[int, int, int]) -> tuple[int, ...]:
    """The bounding box of what differs from the background."""
    plain = Image.new("RGB", picture.size, background)
    box = ImageChops.difference(picture, plain).getbbox()
    assert box is not None
    return box


@pytest.mark.parametrize("size", [(480, 150), (150, 150), (40, 400), (3000, 2000)])
def test_any_logo_becomes_a_square_of_660_px_inside_the_circle(size: tuple[int, int]) -> None:
    data = square_logo(png(size, (200, 30, 40, 255)), "#1a73e8")
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "PNG" and picture.size == (LOGO_SIZE, LOGO_SIZE)
        picture = picture.convert("RGB")
        assert picture.getpixel((0, 0)) == (0x1A, 0x73, 0xE8)          # the program's colour
        assert picture.getpixel((LOGO_SIZE // 2, LOGO_SIZE // 2)) == (200, 30, 40)
        left, top, right, bottom = opaque_box(picture, (0x1A, 0x73, 0xE8))
    # Centred, and every corner inside the circle Google cuts out, with a margin.
    centre = LOGO_SIZE / 2
    assert abs((left + right) / 2 - centre) <= 1 and abs((top + bottom) / 2 - centre) <= 1
    assert math.hypot(right - left, bottom - top) <= LOGO_SIZE * 0.8 + 2
    assert math.hypot(right - left, bottom - top) >= LOGO_SIZE * 0.8 - 4  # not tiny either


def test_transparency_shows_the_background() -> None:
    data = square_logo(png((300, 100), (0, 0, 0, 0)), "#3c2a21")
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.convert("RGB").getcolors() == [(LOGO_SIZE * LOGO_SIZE, (0x3C, 0x2A, 0x21))]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInput):
        square_logo(b"not a picture", "#ffffff")
    with pytest.raises(InvalidInput):
        square_logo(png((10, 10), (0, 0, 0, 255)), "blue-ish")
    with pytest.raises(InvalidInput):
        square_logo(png((10, 10), (0, 0, 0, 255)), "#ffffff", size=512)
    bigger = square_logo(png((10, 10), (0, 0, 0, 255)), "#ffffff", size=1024)
    with Image.open(io.BytesIO(bigger)) as picture:
        assert picture.size == (1024, 1024)
