"""Regenerate the built-in pass templates: ``pass.json``, images and ``pass.strings``.

Run from the repository root::

    python pass_templates/_generate.py

Each template gets ``icon``, ``logo`` and ``strip`` PNGs at @1x/@2x/@3x (icon 29×29 pt, logo
50×50 pt within Apple's 160×50 pt limit, strip 375×123 pt), drawn as flat shapes at 4× and
scaled down for smooth edges, plus ``en.lproj`` and ``ru.lproj`` label strings in UTF-16.
The output is deterministic, so running it twice changes nothing.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from wallet_service.apple.strings import encode_strings  # noqa: E402

RGB = tuple[int, int, int]
Draw = Callable[[ImageDraw.ImageDraw, int, int], None]
SUPERSAMPLE = 4
SIZES = {"icon": (29, 29), "logo": (50, 50), "strip": (375, 123)}

STRINGS = {
    "en": {
        "points.label": "Points",
        "points.short": "Points",
        "points.change": "You now have %@ points",
        "bonus.label": "Bonus balance",
        "bonus.change": "Bonus balance: %@",
        "tier.label": "Level",
        "tier.change": "Your level is now %@",
        "member.label": "Member",
        "stamps.label": "Stamps",
        "stamps.change": "Stamps collected: %@",
        "stamps_left.label": "To reward",
        "rewards.label": "Rewards",
        "rewards.change": "Rewards ready to claim: %@",
        "discount.label": "Discount",
        "discount.change": "Your discount is now %@",
        "cashback.label": "Cashback",
        "cashback.change": "Your cashback is now %@",
        "card.label": "Card",
        "expires.label": "Valid until",
        "rules.label": "Program rules",
        "terms.label": "Terms and conditions",
        "card_page.label": "Your card online",
        "phone.label": "Phone",
        "website.label": "Website",
        "email.label": "Email",
        "location.relevant": "Show this card at the checkout",
    },
    "ru": {
        "points.label": "Баллы",
        "points.short": "Баллы",
        "points.change": "Баллов на счёте: %@",
        "bonus.label": "Бонусы",
        "bonus.change": "Бонусов на счёте: %@",
        "tier.label": "Уровень",
        "tier.change": "Ваш уровень теперь: %@",
        "member.label": "Участник",
        "stamps.label": "Штампы",
        "stamps.change": "Собрано штампов: %@",
        "stamps_left.label": "До подарка",
        "rewards.label": "Подарки",
        "rewards.change": "Подарков к получению: %@",
        "discount.label": "Скидка",
        "discount.change": "Ваша скидка теперь: %@",
        "cashback.label": "Кешбэк",
        "cashback.change": "Ваш кешбэк теперь: %@",
        "card.label": "Карта",
        "expires.label": "Действует до",
        "rules.label": "Правила программы",
        "terms.label": "Условия использования",
        "card_page.label": "Ваша карта онлайн",
        "phone.label": "Телефон",
        "website.label": "Сайт",
        "email.label": "Эл. почта",
        "location.relevant": "Покажите карту на кассе",
    },
}


def field(key: str, label: str, **extra: str) -> dict[str, str]:
    return {"key": key, "label": label, **extra}


MEMBER = field("member", "member.label")
RIGHT = {"textAlignment": "PKTextAlignmentRight"}


# --------------------------------------------------------------------------- drawing helpers


def star(
    cx: float, cy: float, outer: float, inner: float, points: int = 5
) -> list[tuple[float, float]]:
    vertices = []
    for i in range(points * 2):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / points
        vertices.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return vertices


def rounded_square(draw: ImageDraw.ImageDraw, w: int, h: int, fill: RGB) -> None:
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=w * 0.22, fill=fill)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def gradient(draw: ImageDraw.ImageDraw, w: int, h: int, top: RGB, bottom: RGB) -> None:
    for y in range(h):
        draw.line((0, y, w, y), fill=mix(top, bottom, y / max(h - 1, 1)))


# --------------------------------------------------------------------------- templates


def points_icon(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    rounded_square(d, w, h, (24, 44, 82))
    d.polygon(star(w / 2, h * 0.53, w * 0.36, w * 0.15), fill=(222, 173, 40))


def points_logo(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.ellipse(
        (w * 0.04, h * 0.04, w * 0.96, h * 0.96), outline=(222, 173, 40), width=round(w * 0.07)
    )
    d.polygon(star(w / 2, h * 0.53, w * 0.3, w * 0.125), fill=(255, 255, 255))


def points_strip(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    gradient(d, w, h, (30, 56, 104), (18, 33, 62))
    for i, (x, y, r) in enumerate([(0.82, 0.3, 0.55), (0.95, 0.9, 0.38), (0.68, 1.05, 0.3)]):
        colour = mix((30, 56, 104), (222, 173, 40), 0.10 + 0.05 * i)
        d.ellipse((w * x - h * r, h * y - h * r, w * x + h * r, h * y + h * r), fill=colour)
    d.polygon(
        star(w * 0.82, h * 0.32, h * 0.2, h * 0.085), fill=mix((30, 56, 104), (222, 173, 40), 0.55)
    )


STAMP_BROWN = (92, 58, 40)
CREAM = (255, 248, 235)
CARAMEL = (240, 196, 120)


def stamps_icon(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    rounded_square(d, w, h, STAMP_BROWN)
    d.rounded_rectangle((w * 0.24, h * 0.34, w * 0.66, h * 0.78), radius=w * 0.08, fill=CREAM)
    d.ellipse((w * 0.58, h * 0.42, w * 0.80, h * 0.64), outline=CREAM, width=round(w * 0.06))
    d.rectangle((w * 0.30, h * 0.22, w * 0.34, h * 0.30), fill=CARAMEL)
    d.rectangle((w * 0.43, h * 0.18, w * 0.47, h * 0.30), fill=CARAMEL)


def stamps_logo(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.ellipse((w * 0.04, h * 0.04, w * 0.96, h * 0.96), fill=CARAMEL)
    d.ellipse((w * 0.24, h * 0.24, w * 0.76, h * 0.76), fill=STAMP_BROWN)
    d.arc((w * 0.34, h * 0.30, w * 0.66, h * 0.70), 300, 60, fill=CARAMEL, width=round(w * 0.05))


def stamps_strip(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    gradient(d, w, h, (108, 70, 48), (80, 50, 34))
    count, radius = 10, h * 0.13
    spacing = (w - 2 * radius * 1.6) / (count - 1)
    for i in range(count):
        cx, cy = radius * 1.6 + i * spacing, h * 0.78
        d.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            outline=mix((108, 70, 48), CARAMEL, 0.45),
            width=max(1, round(h * 0.018)),
        )


TIER_CHARCOAL = (33, 33, 36)
SILVER = (192, 192, 200)


def chevrons(d: ImageDraw.ImageDraw, cx: float, top: float, size: float, fills: list[RGB]) -> None:
    for i, fill in enumerate(fills):
        y = top + i * size * 0.42
        d.polygon(
            [
                (cx - size / 2, y + size * 0.3),
                (cx, y),
                (cx + size / 2, y + size * 0.3),
                (cx + size / 2, y + size * 0.5),
                (cx, y + size * 0.2),
                (cx - size / 2, y + size * 0.5),
            ],
            fill=fill,
        )


def tiers_icon(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    rounded_square(d, w, h, TIER_CHARCOAL)
    chevrons(d, w / 2, h * 0.2, w * 0.62, [(236, 201, 120), SILVER, (205, 127, 50)])


def tiers_logo(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.polygon(
        [(w * 0.5, h * 0.04), (w * 0.94, h * 0.38), (w * 0.5, h * 0.96), (w * 0.06, h * 0.38)],
        fill=SILVER,
    )
    d.polygon(
        [(w * 0.5, h * 0.2), (w * 0.76, h * 0.4), (w * 0.5, h * 0.78), (w * 0.24, h * 0.4)],
        fill=(255, 255, 255),
    )


def tiers_strip(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    gradient(d, w, h, (46, 46, 52), (24, 24, 27))
    layers = [((205, 127, 50), 0.95), (SILVER, 0.75), ((236, 201, 120), 0.55)]
    for colour, peak in layers:
        fill = mix((46, 46, 52), colour, 0.28)
        d.polygon([(w * 0.35, h), (w * 0.72, h * (1 - peak)), (w * 1.05, h)], fill=fill)


CASH_GREEN = (16, 110, 86)
MINT = (190, 240, 210)


def percent(
    d: ImageDraw.ImageDraw, x0: float, y0: float, size: float, fill: RGB, width: int
) -> None:
    r = size * 0.16
    d.ellipse(
        (x0 + size * 0.12, y0 + size * 0.12, x0 + size * 0.12 + 2 * r, y0 + size * 0.12 + 2 * r),
        outline=fill,
        width=width,
    )
    d.ellipse(
        (x0 + size * 0.88 - 2 * r, y0 + size * 0.88 - 2 * r, x0 + size * 0.88, y0 + size * 0.88),
        outline=fill,
        width=width,
    )
    d.line(
        (x0 + size * 0.8, y0 + size * 0.14, x0 + size * 0.2, y0 + size * 0.86),
        fill=fill,
        width=width,
    )


def cashback_icon(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    rounded_square(d, w, h, CASH_GREEN)
    percent(d, w * 0.14, h * 0.14, w * 0.72, (255, 255, 255), round(w * 0.08))


def cashback_logo(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.ellipse((w * 0.04, h * 0.04, w * 0.96, h * 0.96), fill=MINT)
    percent(d, w * 0.2, h * 0.2, w * 0.6, CASH_GREEN, round(w * 0.07))


def cashback_strip(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    gradient(d, w, h, (20, 128, 100), (12, 88, 68))
    for x, y, r, t in [(0.78, 0.45, 0.42, 0.22), (0.9, 0.2, 0.3, 0.16), (0.66, 0.95, 0.3, 0.12)]:
        cx, cy, radius = w * x, h * y, h * r
        d.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius), fill=mix((20, 128, 100), MINT, t)
        )
        inner = radius * 0.72
        d.ellipse(
            (cx - inner, cy - inner, cx + inner, cy + inner),
            outline=mix((20, 128, 100), MINT, t + 0.12),
            width=max(1, round(h * 0.02)),
        )


TEMPLATES: dict[str, dict[str, object]] = {
    "points": {
        "colours": ((24, 44, 82), (255, 255, 255), (222, 173, 40)),
        "layout": {
            "headerFields": [field("balance", "points.short", source="points")],
            "primaryFields": [field("points", "points.label", changeMessage="points.change")],
            "secondaryFields": [MEMBER],
            "auxiliaryFields": [field("tier", "tier.label", **RIGHT)],
        },
        "draw": (points_icon, points_logo, points_strip),
    },
    "stamps": {
        "colours": (STAMP_BROWN, CREAM, CARAMEL),
        "layout": {
            "headerFields": [field("rewards", "rewards.label", changeMessage="rewards.change"),
                             field("reward_in", "stamps_left.label", source="stamps_left")],
            "primaryFields": [field("stamps", "stamps.label", changeMessage="stamps.change")],
            "secondaryFields": [MEMBER],
            "auxiliaryFields": [field("valid_until", "expires.label", source="expires", **RIGHT)],
        },
        "draw": (stamps_icon, stamps_logo, stamps_strip),
    },
    "tiers": {
        "colours": (TIER_CHARCOAL, (255, 255, 255), SILVER),
        "layout": {
            "headerFields": [field("points", "points.label", changeMessage="points.change"),
                             field("discount", "discount.label",
                                   changeMessage="discount.change")],
            "primaryFields": [field("tier", "tier.label", changeMessage="tier.change")],
            "secondaryFields": [MEMBER],
        },
        "draw": (tiers_icon, tiers_logo, tiers_strip),
    },
    "cashback": {
        "colours": (CASH_GREEN, (255, 255, 255), MINT),
        "layout": {
            "headerFields": [field("cashback", "cashback.label", changeMessage="cashback.change")],
            "primaryFields": [field("bonus", "bonus.label", changeMessage="bonus.change")],
            "secondaryFields": [MEMBER],
            "auxiliaryFields": [field("tier", "tier.label", **RIGHT)],
        },
        "draw": (cashback_icon, cashback_logo, cashback_strip),
    },
}


def render(draw: Draw, size: tuple[int, int], scale: int) -> bytes:
    width, height = size[0] * scale, size[1] * scale
    big = Image.new("RGBA", (width * SUPERSAMPLE, height * SUPERSAMPLE), (0, 0, 0, 0))
    draw(ImageDraw.Draw(big), big.width, big.height)
    image = big.resize((width, height), Image.Resampling.LANCZOS)
    if image.getextrema()[3][0] == 255:
        image = image.convert("RGB")  # fully opaque: no alpha channel needed
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def rgb(colour: RGB) -> str:
    return "rgb({}, {}, {})".format(*colour)


def write_template(name: str, spec: dict[str, object]) -> None:
    directory = ROOT / name
    directory.mkdir(exist_ok=True)
    background, foreground, label = spec["colours"]  # type: ignore[misc]
    pass_json = {
        "formatVersion": 1,
        "backgroundColor": rgb(background),
        "foregroundColor": rgb(foreground),
        "labelColor": rgb(label),
        "suppressStripShine": True,
        "storeCard": spec["layout"],
    }
    (directory / "pass.json").write_text(json.dumps(pass_json, indent=2, ensure_ascii=False) + "\n")
    for kind, draw in zip(("icon", "logo", "strip"), spec["draw"], strict=True):  # type: ignore[call-overload]
        for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
            (directory / f"{kind}{suffix}.png").write_bytes(render(draw, SIZES[kind], scale))
    for language, strings in STRINGS.items():
        lproj = directory / f"{language}.lproj"
        lproj.mkdir(exist_ok=True)
        (lproj / "pass.strings").write_bytes(encode_strings(strings))


def main() -> None:
    for name, spec in TEMPLATES.items():
        write_template(name, spec)
        print(f"wrote {ROOT.name}/{name}")


if __name__ == "__main__":
    main()
