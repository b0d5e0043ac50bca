"""White-label building blocks: sanitizer, contrast checks, themes, sections, renderer.

Pure and I/O-free apart from reading theme packs from disk at start-up; the
HTTP API (drafts, previews, publishing) is built on top of these.
"""

from core.whitelabel.contrast import (
    RGB,
    ContrastFailure,
    check_theme_contrast,
    contrast_ratio,
    parse_css_color,
    relative_luminance,
)
from core.whitelabel.render import Branding, LandingRenderer, UnknownTheme
from core.whitelabel.sanitize import (
    MAX_RICH_TEXT_BYTES,
    RichTextTooLarge,
    RichTextUnstable,
    sanitize_rich_text,
)
from core.whitelabel.sections import (
    CtaSection,
    FaqItem,
    FaqSection,
    FeatureItem,
    FeaturesSection,
    HeroSection,
    ImageSection,
    LandingSection,
    RichTextSection,
    SectionBase,
    SectionRegistry,
    SectionType,
)
from core.whitelabel.themes import (
    DEFAULT_THEMES_ROOT,
    FONT_ALLOW_LIST,
    DesignTokens,
    ThemeError,
    ThemePack,
    load_theme_pack,
    load_theme_packs,
)

__all__ = [
    "DEFAULT_THEMES_ROOT",
    "FONT_ALLOW_LIST",
    "MAX_RICH_TEXT_BYTES",
    "RGB",
    "Branding",
    "ContrastFailure",
    "CtaSection",
    "DesignTokens",
    "FaqItem",
    "FaqSection",
    "FeatureItem",
    "FeaturesSection",
    "HeroSection",
    "ImageSection",
    "LandingRenderer",
    "LandingSection",
    "RichTextSection",
    "RichTextTooLarge",
    "RichTextUnstable",
    "SectionBase",
    "SectionRegistry",
    "SectionType",
    "ThemeError",
    "ThemePack",
    "UnknownTheme",
    "check_theme_contrast",
    "contrast_ratio",
    "load_theme_pack",
    "load_theme_packs",
    "parse_css_color",
    "relative_luminance",
    "sanitize_rich_text",
]
