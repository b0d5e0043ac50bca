"""Normalised terms: what a chunk is indexed by and a question is matched with.

Pure functions. Both sides go through the same steps (Unicode folding, case
folding, stop words, a light English suffix stripper), so "Remotely" in a
question meets "remote" in a policy. The stemmer is deliberately small: it only
has to make question and text agree, not produce dictionary words.
"""

from __future__ import annotations

import re
import unicodedata

# Letters and digits of any script; "_" is a word character for \w, so split on it too.
_WORD = re.compile(r"[^\W_]+")
MAX_TERM_CHARS = 40

STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can cannot could did do does doing down during
    each either etc few for from further get gets got had has have having he her here hers
    herself him himself his how i if in into is it its itself just let lets may me might
    more most must my myself no nor not of off on once only or other ought our ours
    ourselves out over own per please same shall she should so some such than that the
    their theirs them themselves then there these they this those through to too under
    until up upon us very was we were what when where which while who whom why will with
    within without would yes yet you your yours yourself yourselves many much whats
    """.split()
)


def fold(text: str) -> str:
    """Accents removed, case folded: "Résumé" and "resume" become the same string."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def stem(word: str) -> str:
    """A light suffix stripper (plurals, -ing, -ed, -ly, final -e)."""
    if len(word) >= 5 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) >= 5 and word.endswith("sses"):
        word = word[:-2]
    elif len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if len(word) >= len(suffix) + 4 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) >= 5 and word.endswith("e"):
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Every indexable term of ``text``, in order and with repeats (for term frequency)."""
    out: list[str] = []
    for raw in _WORD.findall(fold(text)):
        if raw in STOP_WORDS or len(raw) > MAX_TERM_CHARS:
            continue
        if len(raw) < 2 and not raw.isdigit():
            continue
        out.append(stem(raw))
    return out


def term_set(text: str, *, limit: int = 512) -> list[str]:
    """The distinct terms of ``text`` (first occurrence order), at most ``limit``."""
    seen: dict[str, None] = {}
    for term in tokens(text):
        if term not in seen:
            seen[term] = None
            if len(seen) >= limit:
                break
    return list(seen)
