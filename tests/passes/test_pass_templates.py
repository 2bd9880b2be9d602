"""Built-in templates, pass.strings encoding, purity of wallet_service.apple (§1.4, §1.5)."""

from __future__ import annotations

import ast
import codecs
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pass_helpers import TEMPLATE_NAMES
from PIL import Image

from wallet_service.apple import PassTemplate
from wallet_service.apple import TemplateFile
from wallet_service.apple import assets as apple_assets
from wallet_service.apple import decode_strings
from wallet_service.apple import encode_strings
from wallet_service.errors import ConfigurationError
from wallet_service.errors import InvalidInput

APPLE_DIR = Path(apple_assets.__file__).parent
#: The one module of the package that reads and writes files (templates, certificates).
IO_MODULE = "assets.py"
SIZES = {"icon": (29, 29), "strip": (375, 123)}


def test_all_built_in_templates_are_listed() -> None:
    assert set(TEMPLATE_NAMES) <= set(apple_assets.list_templates())


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_files(name: str) -> None:
    template = apple_assets.load_template(name)
    assert template is apple_assets.load_template(name)  # cached per process
    assert template.languages == ("en", "ru")
    assert template.strings["en"].keys() == template.strings["ru"].keys()
    for kind in ("icon", "logo", "strip"):
        sizes = []
        for suffix in ("", "@2x", "@3x"):
            file = template.images[f"{kind}{suffix}.png"]
            with Image.open(io.BytesIO(file.data)) as picture:
                assert picture.format == "PNG"
                sizes.append(picture.size)
        if kind in SIZES:
            w, h = SIZES[kind]
            assert sizes == [(w, h), (w * 2, h * 2), (w * 3, h * 3)]
        else:
            assert sizes[0][0] <= 160 and sizes[0][1] <= 50
            assert sizes[1] == (sizes[0][0] * 2, sizes[0][1] * 2)
            assert sizes[2] == (sizes[0][0] * 3, sizes[0][1] * 3)
    base = template.pass_json
    assert base["formatVersion"] == 1 and "storeCard" in base
    for colour in ("backgroundColor", "foregroundColor", "labelColor"):
        assert base[colour].startswith("rgb(")


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_strings_files_on_disk_are_utf16_with_bom(name: str) -> None:
    for language in ("en", "ru"):
        raw = (
            apple_assets.TEMPLATES_DIR / name / f"{language}.lproj" / "pass.strings"
        ).read_bytes()
        assert raw.startswith(codecs.BOM_UTF16_LE)
        raw[2:].decode("utf-16-le")


def test_russian_labels_are_natural_russian() -> None:
    ru = apple_assets.load_template("points").strings["ru"]
    assert ru["points.label"] == "Баллы"
    assert ru["tier.label"] == "Уровень"
    assert ru["member.label"] == "Участник"
    assert ru["cashback.label"] == "Кешбэк"
    for text in ru.values():
        assert any("а" <= ch.lower() <= "я" or ch == "ё" for ch in text), text


def test_unknown_template_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no template") as caught:
        apple_assets.load_template("nope")
    assert caught.value.field == "template"
    with pytest.raises(InvalidInput):
        apple_assets.load_template("../points")


def test_strings_round_trip_with_escapes() -> None:
    strings = {"a": 'He said "hi"', "b\\c": "line 1\nline 2", "ru": "Баллы: %@"}
    data = encode_strings(strings)
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert decode_strings(data) == strings
    assert decode_strings(b'/* c */ "k" = "v"; // x\n') == {"k": "v"}
    with pytest.raises(InvalidInput, match="malformed"):
        decode_strings('"k" = "v"\n"x" = "y";'.encode("utf-16"))


def _template(**changes: object) -> PassTemplate:
    base = apple_assets.load_template("points")
    values = {
        "name": "t",
        "pass_json": json.loads(json.dumps(dict_of(base.pass_json))),
        "images": dict(base.images),
        "strings": {k: dict(v) for k, v in base.strings.items()},
    }
    values.update(changes)
    return PassTemplate(**values)  # type: ignore[arg-type]


def dict_of(value: object) -> object:
    from wallet_service.apple._frozen import thaw

    return thaw(value)


def test_a_valid_copy_is_accepted() -> None:
    assert _template().name == "t"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["storeCard"]["primaryFields"].append({"key": "x", "label": "points.label"}),
            "1 primary",
        ),
        (
            lambda d: d["storeCard"]["headerFields"].extend(
                [{"key": f"h{i}", "label": "points.label"} for i in range(3)]
            ),
            "3 header",
        ),
        (
            lambda d: d["storeCard"]["secondaryFields"].extend(
                [{"key": f"s{i}", "label": "member.label", "source": "member"} for i in range(4)]
            ),
            "4 secondary",
        ),
        (
            lambda d: d["storeCard"]["auxiliaryFields"].append(
                {"key": "member", "label": "member.label"}
            ),
            "not unique",
        ),
        (
            lambda d: d["storeCard"]["auxiliaryFields"].append(
                {"key": "rules", "label": "member.label", "source": "member"}
            ),
            "not unique",
        ),
        (
            lambda d: d["storeCard"]["auxiliaryFields"].append({"key": "z", "label": "nope"}),
            "unknown source",
        ),
        (
            lambda d: d["storeCard"]["auxiliaryFields"].append({"key": "card", "label": "nope"}),
            "not in pass.strings",
        ),
        (lambda d: d.update(backgroundColor="#000000"), "rgb"),
        (lambda d: d.update(formatVersion="1"), "formatVersion"),
    ],
)
def test_broken_templates_are_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    pass_json = dict_of(apple_assets.load_template("points").pass_json)
    mutate(pass_json)
    with pytest.raises(ConfigurationError, match=message):
        _template(pass_json=pass_json)


def test_templates_need_an_icon_and_matching_strings() -> None:
    images = dict(apple_assets.load_template("points").images)
    del images["icon@2x.png"]
    with pytest.raises(ConfigurationError, match="icon"):
        _template(images=images)
    strings = {k: dict(v) for k, v in apple_assets.load_template("points").strings.items()}
    del strings["ru"]["tier.label"]
    with pytest.raises(ConfigurationError, match="different keys"):
        _template(strings=strings)
    assert TemplateFile(b"abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_apple_package_is_pure_but_for_its_io_module() -> None:
    """No web framework, database, network or file access inside wallet_service.apple, except
    the file access of its declared I/O module."""
    forbidden_modules = {
        "flask",
        "sqlalchemy",
        "httpx",
        "requests",
        "socket",
        "urllib.request",
        "os",
        "pathlib",
        "shutil",
        "subprocess",
        "tempfile",
        "sqlite3",
    }
    for path in APPLE_DIR.glob("*.py"):
        if path.name == IO_MODULE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
                if node.level == 2:
                    assert node.module == "errors", f"{path.name} imports ..{node.module}"
            else:
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id != "open", f"{path.name} opens a file"
                continue
            for name in names:
                assert (
                    name.split(".")[0] not in forbidden_modules and name not in forbidden_modules
                ), (path.name, name)
    code = (
        "import sys, wallet_service.apple; "
        "assert not {'flask', 'sqlalchemy'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
