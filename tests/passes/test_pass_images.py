"""prepare_image: PNG or JPEG in, Apple's exact sizes out; bad uploads refused (spec §1.4)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from wallet_service.apple import images as image_module
from wallet_service.apple import prepare_image
from wallet_service.errors import InvalidInput


def encode(picture: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def open_png(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG"
    return picture


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("source_size", [(1000, 700), (40, 90), (3000, 100)])
def test_icon_and_strip_have_exact_sizes(fmt: str, source_size: tuple[int, int]) -> None:
    data = encode(Image.new("RGB", source_size, (10, 120, 200)), fmt)
    icon = prepare_image("icon", data)
    strip = prepare_image("strip", data)
    assert set(icon) == {"icon.png", "icon@2x.png", "icon@3x.png"}
    assert [open_png(icon[n]).size for n in ("icon.png", "icon@2x.png", "icon@3x.png")] == [
        (29, 29),
        (58, 58),
        (87, 87),
    ]
    assert [open_png(strip[n]).size for n in ("strip.png", "strip@2x.png", "strip@3x.png")] == [
        (375, 123),
        (750, 246),
        (1125, 369),
    ]


@pytest.mark.parametrize(
    ("source_size", "expected"),
    [
        ((800, 250), (160, 50)),
        ((100, 100), (50, 50)),
        ((1000, 100), (160, 16)),
        ((20, 10), (100, 50)),
    ],
)
def test_logo_fits_inside_160_by_50_keeping_its_shape(
    source_size: tuple[int, int], expected: tuple[int, int]
) -> None:
    files = prepare_image("logo", encode(Image.new("RGBA", source_size, (255, 0, 0, 128)), "PNG"))
    sizes = [open_png(files[n]).size for n in ("logo.png", "logo@2x.png", "logo@3x.png")]
    assert sizes == [
        expected,
        (expected[0] * 2, expected[1] * 2),
        (expected[0] * 3, expected[1] * 3),
    ]


def test_logo_and_icon_keep_transparency() -> None:
    picture = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    picture.paste((255, 0, 0, 255), (100, 100, 200, 200))
    data = encode(picture, "PNG")
    for kind in ("logo", "icon"):
        out = open_png(prepare_image(kind, data)[f"{kind}@3x.png"])
        assert out.mode == "RGBA"
        assert out.getpixel((0, 0))[3] == 0
        assert out.getpixel((out.width // 2, out.height // 2))[3] == 255


def test_wide_icon_is_padded_not_cropped() -> None:
    picture = Image.new("RGB", (400, 100), (255, 0, 0))
    out = open_png(prepare_image("icon", encode(picture, "PNG"))["icon@3x.png"])
    assert out.getpixel((0, 0))[3] == 0  # padding above the picture
    assert out.getpixel((0, 43))[:3] == (255, 0, 0)  # the full width is kept


def test_strip_covers_the_whole_area() -> None:
    out = open_png(
        prepare_image("strip", encode(Image.new("RGB", (500, 500), (0, 200, 0)), "JPEG"))[
            "strip.png"
        ]
    )
    assert out.mode == "RGB"
    r, g, b = out.getpixel((0, 0))
    assert g > 150 and r < 40 and b < 40


def test_jpeg_exif_orientation_is_applied() -> None:
    picture = Image.new("RGB", (200, 100), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    files = prepare_image("logo", encode(picture, "JPEG", exif=exif.tobytes()))
    assert open_png(files["logo.png"]).size == (25, 50)


def test_output_is_deterministic() -> None:
    data = encode(Image.new("RGB", (640, 480), (1, 2, 3)), "PNG")
    assert prepare_image("strip", data) == prepare_image("strip", data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is plain text, not a picture", "not a PNG or JPEG"),
        (b"%PDF-1.7\n" + b"0" * 100, "not a PNG or JPEG"),
    ],
)
def test_non_images_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        prepare_image("logo", data)
    assert caught.value.field == "logo"


def test_other_image_formats_are_refused() -> None:
    with pytest.raises(InvalidInput, match="GIF; only PNG and JPEG") as caught:
        prepare_image("strip", encode(Image.new("RGB", (10, 10)), "GIF"))
    assert caught.value.field == "strip"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_refused(fmt: str) -> None:
    noisy = Image.effect_noise((300, 300), 60).convert("RGB")
    data = encode(noisy, fmt)
    with pytest.raises(InvalidInput, match="broken or truncated") as caught:
        prepare_image("icon", data[: len(data) // 2])
    assert caught.value.field == "icon"


def test_oversized_upload_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_module, "MAX_IMAGE_BYTES", 1000)
    data = encode(Image.effect_noise((100, 100), 80).convert("RGB"), "PNG")
    with pytest.raises(InvalidInput, match="too large") as caught:
        prepare_image("strip", data)
    assert caught.value.field == "strip"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming a huge size; it never needs to be decoded to be refused."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(10_000, 10_000), (50_000, 50_000)])
def test_decompression_bombs_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput, match="too many pixels") as caught:
        prepare_image("logo", png_header_only(*size))
    assert caught.value.field == "logo"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown image kind") as caught:
        prepare_image("thumbnail", encode(Image.new("RGB", (10, 10)), "PNG"))
    assert caught.value.field == "thumbnail"
