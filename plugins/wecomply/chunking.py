"""Cut extracted text into chunks: along headings, then paragraphs, with a size cap and overlap.

Pure functions. A chunk never spans two sections (a heading always starts a
new chunk, and carries the heading path so "Remote work › Equipment" is
searchable even when the paragraph never repeats it). Inside a section,
paragraphs are packed up to ``max_chars``; a paragraph that is too long is
cut at sentence ends, then at word ends, then anywhere. Consecutive chunks of
one section share up to ``overlap`` characters (whole sentences or words), so
a fact that straddles a cut is still found whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_CHARS = 1200
OVERLAP = 200
HEADING_SEPARATOR = " › "
MAX_TITLE_CHARS = 200  # per heading level; a path is at most 6 of them

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class TextChunk:
    ordinal: int
    heading: str
    text: str


def sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """(heading path, paragraphs) in document order; Markdown ``#`` lines are headings."""
    path: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> Iterator[tuple[str, list[str]]]:
        paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split("\n".join(body))]
        paragraphs = [p for p in paragraphs if p]
        if paragraphs:
            yield HEADING_SEPARATOR.join(title for _, title in path), paragraphs

    for line in text.split("\n"):
        match = _HEADING.match(line.strip())
        if match is None:
            body.append(line)
            continue
        yield from flush()
        body = []
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level]
        path.append((level, " ".join(match.group(2).split())[:MAX_TITLE_CHARS]))
    yield from flush()


def chunk_text(text: str, *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP
               ) -> list[TextChunk]:
    """The chunks of ``text``; every chunk's text is at most ``max_chars`` long."""
    if max_chars < 50 or not 0 <= overlap < max_chars // 2:
        raise ValueError("max_chars must be >= 50 and overlap below half of it")
    out: list[TextChunk] = []
    for heading, paragraphs in sections(text):
        units = [piece for p in paragraphs for piece in _fit(p, max_chars, overlap)]
        for window in _pack(units, max_chars, overlap, "\n\n"):
            out.append(TextChunk(ordinal=len(out), heading=heading, text=window))
    return out


def _fit(paragraph: str, max_chars: int, overlap: int) -> list[str]:
    """A paragraph as pieces of at most ``max_chars``: sentences, then words, then slices."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    units: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(sentence) <= max_chars:
            units.append(sentence)
            continue
        for word in sentence.split():
            units.extend(word[i:i + max_chars] for i in range(0, len(word), max_chars))
    return _pack(units, max_chars, overlap, " ")


def _pack(units: list[str], max_chars: int, overlap: int, sep: str) -> list[str]:
    """Greedy windows of units joined by ``sep``; each window after the first starts
    with the tail (up to ``overlap`` characters) of the one before when it fits."""
    windows: list[str] = []
    current = ""
    fresh = False  # does ``current`` hold a unit not yet emitted?
    for unit in units:
        if not current:
            current, fresh = unit, True
            continue
        if len(current) + len(sep) + len(unit) <= max_chars:
            current, fresh = current + sep + unit, True
            continue
        windows.append(current)
        tail = _tail(current, overlap)
        current = tail + sep + unit if tail and len(tail) + len(sep) + len(unit) <= max_chars \
            else unit
        fresh = True
    if current and fresh:
        windows.append(current)
    return windows


def _tail(text: str, limit: int) -> str:
    """The last whole sentences of ``text`` within ``limit`` characters, else the last words."""
    if limit <= 0:
        return ""
    for parts, sep in ((_SENTENCE_END.split(text), " "), (text.split(), " ")):
        taken: list[str] = []
        size = 0
        for part in reversed(parts):
            extra = len(part) + (len(sep) if taken else 0)
            if size + extra > limit:
                break
            taken.insert(0, part)
            size += extra
        if taken and size < len(text):
            return sep.join(taken)
    return ""
