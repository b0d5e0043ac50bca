"""Theme packs on disk: loading, tokens, AA contrast, and what the files may contain."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.whitelabel.contrast import check_theme_contrast
from core.whitelabel.themes import (
    BUILTIN_SECTION_TEMPLATES,
    DEFAULT_THEMES_ROOT,
    FONT_ALLOW_LIST,
    DesignTokens,
    ThemeError,
    load_theme_pack,
    load_theme_packs,
)

THEMES = ["clinical", "corporate"]


@pytest.fixture(scope="module")
def packs():  # type: ignore[no-untyped-def]
    return load_theme_packs()


def test_both_bundled_packs_load(packs) -> None:  # type: ignore[no-untyped-def]
    assert set(THEMES) <= set(packs)
    for name in THEMES:
        pack = packs[name]
        assert pack.name == name and pack.title
        assert (pack.template_dir / "page.html.j2").is_file()
        for template in BUILTIN_SECTION_TEMPLATES:
            assert (pack.template_dir / template).is_file()
        assert pack.stylesheet.is_file()


@pytest.mark.parametrize("name", THEMES)
def test_bundled_packs_pass_aa(packs, name: str) -> None:  # type: ignore[no-untyped-def]
    assert check_theme_contrast(packs[name].tokens) == []


@pytest.mark.parametrize("name", THEMES)
def test_theme_css_reads_tokens_only_through_custom_properties(name: str) -> None:
    css = (DEFAULT_THEMES_ROOT / name / "static" / "theme.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b", css), "hard-coded hex colour"
    assert not re.search(r"\b(rgba?|hsla?|hwb|lab|lch|oklch|color)\(", css), "colour function"
    assert not re.search(r"@import|url\(|https?:|//", css), "external resource"
    named = r"\b(black|white|red|green|blue|gray|grey|navy|silver|orange|yellow|purple)\b"
    assert not re.search(r":\s*[^;]*" + named, css), "named colour"
    for prop in ("color", "background", "font-family"):
        for value in re.findall(rf"(?<![-\w]){prop}\s*:\s*([^;]+);", css):
            assert value.strip().startswith("var(--"), (prop, value)
    used = set(re.findall(r"var\((--[a-z0-9-]+)\)", css))
    defined = {
        n for n, _ in load_theme_pack(DEFAULT_THEMES_ROOT / name).tokens.css_custom_properties()
    }
    assert used <= defined, used - defined


@pytest.mark.parametrize("name", THEMES)
def test_templates_have_no_script_handlers_or_external_urls(name: str) -> None:
    template_dir = DEFAULT_THEMES_ROOT / name / "templates"
    files = sorted(template_dir.rglob("*.j2"))
    assert len(files) == 1 + len(BUILTIN_SECTION_TEMPLATES)
    for path in files:
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # drop comments
        assert "<script" not in text.lower(), path
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), path
        assert not re.search(r"https?://|//[a-z]", text, re.I), path
        assert "style=" not in text, path  # no inline style attributes (CSP)
        if path.name == "rich_text.html.j2":
            assert text.count("|safe") == 1 and "section.html|safe" in text
        else:
            assert "|safe" not in text and "Markup" not in text, path
    page = (template_dir / "page.html.j2").read_text()
    assert '<style nonce="{{ csp_nonce }}">' in page
    assert '<link rel="stylesheet" href="{{ static_url }}/theme.css">' in page
    assert "{% include section_templates[section.type] %}" in page


def test_font_allow_list_is_local_and_escaping_neutral() -> None:
    generic = ("sans-serif", "serif", "monospace")
    for key, stack in FONT_ALLOW_LIST.items():
        assert stack.rsplit(",", 1)[-1].strip() in generic, key
        assert re.fullmatch(r"[A-Za-z0-9 ,-]+", stack), key  # nothing HTML-escaping changes


def test_tokens_are_normalised_and_strict() -> None:
    colors = {
        "primary": "rgb(11, 93, 122)", "on_primary": "white", "accent": "#0F766E",
        "on_accent": "#fff", "background": "#ffffff", "surface": "#f1f6f9", "text": "#16262e",
        "muted_text": "#4a5d66", "link": "#0a5673", "border": "#c5d3da",
    }  # fmt: skip
    tokens = DesignTokens.model_validate({"colors": colors})
    assert tokens.colors.primary == "#0b5d7a" and tokens.colors.on_primary == "#ffffff"
    assert tokens.colors.accent == "#0f766e"
    with pytest.raises(ValidationError, match="invalid CSS colour"):
        DesignTokens.model_validate({"colors": {**colors, "text": "red;}body{x:y"}})
    with pytest.raises(ValidationError):
        DesignTokens.model_validate({"colors": {**colors, "extra": "#fff"}})
    with pytest.raises(ValidationError, match="not allowed"):
        DesignTokens.model_validate({"colors": colors, "typography": {"font_family": "Comic Sans"}})
    with pytest.raises(ValidationError):
        DesignTokens.model_validate({"colors": colors, "typography": {"base_size": 99}})


def test_css_custom_properties(packs) -> None:  # type: ignore[no-untyped-def]
    props = dict(packs["clinical"].tokens.css_custom_properties())
    assert props["--color-primary"] == "#0b5d7a"
    assert props["--color-on-primary"] == "#ffffff"
    assert props["--color-muted-text"] == "#4a5d66"
    assert props["--font-family"] == FONT_ALLOW_LIST["humanist"]
    assert props["--font-size-base"] == "17px"
    assert props["--radius-md"] == "10px" and props["--space-xl"] == "72px"
    assert props["--font-size-h2"] == f"{round(17 * 1.25**3, 2):g}px"


def test_with_color_overrides_validates(packs) -> None:  # type: ignore[no-untyped-def]
    base = packs["clinical"].tokens
    branded = base.with_color_overrides({"primary": "#123456"})
    assert branded.colors.primary == "#123456" and base.colors.primary == "#0b5d7a"
    with pytest.raises(ValidationError):
        base.with_color_overrides({"primary": "url(x)"})
    with pytest.raises(ValidationError):
        base.with_color_overrides({"shadow": "#000"})
    failing = base.with_color_overrides({"primary": "#8fb8c8"})
    assert [f.pair for f in check_theme_contrast(failing)] == ["on_primary on primary"]


def _copy_pack(tmp_path: Path, name: str = "clinical") -> Path:
    target = tmp_path / name
    shutil.copytree(DEFAULT_THEMES_ROOT / "clinical", target)
    return target


def _edit_manifest(pack: Path, **changes: object) -> None:
    manifest = json.loads((pack / "theme.json").read_text())
    manifest.update(changes)
    (pack / "theme.json").write_text(json.dumps(manifest))


def test_loader_refuses_a_pack_failing_contrast(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    manifest = json.loads((pack / "theme.json").read_text())
    manifest["tokens"]["colors"]["muted_text"] = "#999999"
    (pack / "theme.json").write_text(json.dumps(manifest))
    with pytest.raises(ThemeError, match="muted_text on background"):
        load_theme_packs(tmp_path)


def test_loader_refuses_missing_templates(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    (pack / "templates" / "sections" / "faq.html.j2").unlink()
    with pytest.raises(ThemeError, match="faq"):
        load_theme_pack(pack)


def test_loader_refuses_name_mismatch_and_bad_manifest(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path, "other")
    with pytest.raises(ThemeError, match="directory name"):
        load_theme_pack(pack)
    _edit_manifest(pack, name="other", unknown=1)
    with pytest.raises(ThemeError, match="unknown"):
        load_theme_pack(pack)
    (pack / "theme.json").write_text("{not json")
    with pytest.raises(ThemeError):
        load_theme_pack(pack)


@pytest.mark.parametrize(
    "css",
    [
        "@import 'x.css';",
        "body { background: url(x.png); }",
        "a { b: c } /**/ // x",
        "@font-face { src: local(x), URL( https://fonts.example/x.woff2 ) }",
    ],
)
def test_loader_refuses_css_that_loads_things(tmp_path: Path, css: str) -> None:
    pack = _copy_pack(tmp_path)
    (pack / "static" / "theme.css").write_text(css)
    with pytest.raises(ThemeError, match="must not load"):
        load_theme_pack(pack)


def test_loader_skips_non_theme_directories(tmp_path: Path) -> None:
    _copy_pack(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "notes").mkdir()
    assert list(load_theme_packs(tmp_path)) == ["clinical"]
    with pytest.raises(ThemeError):
        load_theme_packs(tmp_path / "missing")
