"""Rich-text sanitization for tenant-authored landing-page content.

Tenants write rich text (a small subset of HTML) that is stored and later
inserted into public pages with ``|safe``. This module is the only thing that
makes that safe, so it is deliberately strict and has no configuration knobs:

* an allow-list of formatting tags; never ``svg``, ``math``, ``style``,
  ``script``, ``iframe``, ``noscript``, ``template``, ``form``, ``img``...
* attributes: only ``href`` and ``title`` on ``a``; no ``style``, no ``on*``;
* URL schemes ``http``, ``https`` and ``mailto``; relative URLs only when they
  are a same-page fragment (``#faq``) or a site-absolute path (``/pricing``),
  never protocol-relative (``//host``);
* every link gets ``rel="noopener noreferrer"``; comments are stripped;
* the content of script-like elements is dropped, not shown as text.

The cleaner is idempotent: ``sanitize_rich_text(sanitize_rich_text(x)) ==
sanitize_rich_text(x)``, so stored content can be re-validated at any time.
One ammonia pass alone is not (stripping a disallowed container can leave
nesting the parser rearranges next time, and ``<pre>`` loses a leading
newline per pass), so we fix up ``<pre>`` and clean to a fixed point.
Both the input and the sanitized output must fit in ``MAX_RICH_TEXT_BYTES``
(UTF-8); the output check guarantees that anything we ever stored passes the
input check when it is cleaned again.
"""

from __future__ import annotations

import re

import nh3

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "LINK_REL",
    "MAX_RICH_TEXT_BYTES",
    "RichTextTooLarge",
    "RichTextUnstable",
    "sanitize_rich_text",
]

#: Largest accepted rich-text input (and sanitized output), in UTF-8 bytes.
MAX_RICH_TEXT_BYTES = 64 * 1024

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "hr",
        "strong", "em", "b", "i", "u", "s", "span",
        "ul", "ol", "li",
        "h2", "h3", "h4",
        "blockquote", "code", "pre",
        "a",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {"a": frozenset({"href", "title"})}

ALLOWED_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

LINK_REL = "noopener noreferrer"

# Elements whose *content* is removed together with the tag. Everything not in
# ALLOWED_TAGS is removed anyway; for these, their text would otherwise leak
# out as visible (escaped) text, which is never what the author meant.
_CLEAN_CONTENT_TAGS: frozenset[str] = frozenset(
    {
        "script", "style", "template", "noscript", "noembed", "noframes",
        "iframe", "frame", "frameset", "object", "embed", "applet",
        "svg", "math", "xmp", "plaintext", "textarea", "title", "select",
        "head", "meta", "link", "base",
    }
)  # fmt: skip

_MAX_PASSES = 4

_FORBIDDEN_TAGS = frozenset({"svg", "math", "style", "script", "iframe", "noscript", "template"})
assert not (ALLOWED_TAGS & _FORBIDDEN_TAGS)  # guard against a careless edit
assert not (ALLOWED_TAGS & _CLEAN_CONTENT_TAGS)


class RichTextTooLarge(ValueError):
    """Rich text (input or sanitized output) exceeds ``MAX_RICH_TEXT_BYTES``.

    A ``ValueError`` so that pydantic validators turn it into a normal
    validation error.
    """

    def __init__(self, size: int, limit: int = MAX_RICH_TEXT_BYTES, *, what: str = "input") -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"rich text {what} is {size} bytes; the limit is {limit} bytes")


class RichTextUnstable(ValueError):
    """Markup whose sanitized form does not settle (pathological nesting)."""


def _relative_url(url: str) -> str | None:
    """Decide about URLs without a scheme (ammonia calls this only for those).

    Keep same-page fragments and site-absolute paths; drop everything else,
    notably protocol-relative ``//evil.example`` and ``/\\evil.example``
    (browsers treat a backslash like a slash).
    """
    if url.startswith("#"):
        return url
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return url
    return None


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_CLEAN_CONTENT_TAGS),
    # "*": empty, or ammonia's default generic attributes (lang, title) apply.
    attributes={"*": set(), **{tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()}},
    url_schemes=set(ALLOWED_URL_SCHEMES),
    link_rel=LINK_REL,
    strip_comments=True,
    generic_attribute_prefixes=set(),
    url_relative=_relative_url,
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def sanitize_rich_text(html: str) -> str:
    """Return ``html`` reduced to the allowed subset; safe to insert with ``|safe``.

    Raises ``RichTextTooLarge`` if the input or the result is larger than
    ``MAX_RICH_TEXT_BYTES``, ``RichTextUnstable`` if the cleaned markup does
    not reach a fixed point within a few passes (never seen in practice), and
    ``TypeError`` if ``html`` is not a string. Both errors are ``ValueError``.
    """
    if not isinstance(html, str):
        raise TypeError(f"rich text must be a str, not {type(html).__name__}")
    # len() counts code points, which is a lower bound of the UTF-8 size.
    if len(html) > MAX_RICH_TEXT_BYTES or _utf8_size(html) > MAX_RICH_TEXT_BYTES:
        raise RichTextTooLarge(_utf8_size(html))
    # Lone surrogates cannot cross into Rust; replace them like a decoder would.
    html = _SURROGATE.sub("\ufffd", html)
    cleaned = _clean_once(html)
    # Clean until a fixed point: stripping a disallowed container can leave
    # nesting the parser would undo on the next pass (e.g. <a><table><a> ->
    # <a><a>), so one pass alone is not always idempotent.
    for _ in range(_MAX_PASSES):
        size = _utf8_size(cleaned)
        if size > MAX_RICH_TEXT_BYTES:
            raise RichTextTooLarge(size, what="sanitized output")
        again = _clean_once(cleaned)
        if again == cleaned:
            return cleaned
        cleaned = again
    raise RichTextUnstable("rich text could not be normalised; simplify its markup")


def _clean_once(html: str) -> str:
    cleaned = _CLEANER.clean(html)
    # The HTML parser drops one newline right after <pre>, and the serializer
    # does not put it back; restore it so that text starting with a newline
    # survives another pass. (``<`` is always escaped in text and attribute
    # values, so a literal "<pre>" is always our tag; pre has no attributes.)
    return cleaned.replace("<pre>\n", "<pre>\n\n")
