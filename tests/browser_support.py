"""Shared by the XSS tests: the payload corpus and how we launch Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "xss_payloads.txt"
_PLACEHOLDERS = {"{TAB}": "\t", "{NL}": "\n", "{CR}": "\r", "{FF}": "\f", "{NUL}": "\0"}

CHROMIUM = Path("/usr/bin/chromium")
# No network but loopback: the sandboxed machine refuses everything else anyway.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

REQUIRES_CHROMIUM = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium; the Makefile does this)",
    ),
]


def load_payloads(path: Path = CORPUS) -> list[tuple[int, str]]:
    """(number, payload) pairs from the corpus, numbered from 1 (see its header)."""
    payloads: list[tuple[int, str]] = []
    for line in path.read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        for token, char in _PLACEHOLDERS.items():
            line = line.replace(token, char)
        payloads.append((len(payloads) + 1, line))
    return payloads
