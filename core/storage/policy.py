"""Upload policies, object names and display names: pure rules, no I/O.

A policy is "what may be stored for one use": the allowed content types
(each with the type its bytes must sniff as) and a size ceiling. Object names
are always built by the server from ids; a client's filename never reaches
the bucket, and display names are cleaned before they reach a header.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

from core.storage import sniff

MiB = 1024 * 1024


@dataclass(frozen=True)
class UploadPolicy:
    """What one use (documents, avatars, …) may upload."""

    use: str
    # declared content type → the type its first bytes must sniff as
    content_types: Mapping[str, str]
    max_bytes: int
    upload_ttl: timedelta = timedelta(minutes=10)
    download_ttl: timedelta = timedelta(minutes=5)
    # Declared types whose ZIP container must be a Word document.
    docx_types: frozenset[str] = field(default_factory=lambda: frozenset({sniff.DOCX}))

    def refusal(self, content_type: str, size: int) -> tuple[str, str] | None:
        """(type slug, detail) when a declared file may not be uploaded, else None."""
        if content_type not in self.content_types:
            allowed = ", ".join(sorted(self.content_types))
            return ("unsupported-content-type",
                    f"Files of type {content_type[:100]!r} cannot be uploaded as {self.use}; "
                    f"allowed: {allowed}.")
        if size < 1:
            return ("empty-file", "The declared size is 0; an upload needs at least one byte.")
        if size > self.max_bytes:
            return ("file-too-large",
                    f"The declared size {size} bytes is above the limit of "
                    f"{self.max_bytes} bytes for {self.use}.")
        return None

    def verify(self, declared: str, head: bytes, *, size: int,
               tail: bytes | None = None) -> Verdict:
        """Do the stored bytes show the declared type?

        ``tail`` (the file's last bytes) is needed only for ZIP-based types
        (:meth:`needs_tail`): their central directory says what the archive is.
        """
        expected = self.content_types.get(declared)
        found = sniff.sniff(head, truncated=size > len(head))
        if expected is None or found != expected:
            shown = found or "unrecognised data"
            return Verdict(found, f"The file's content looks like {shown}, not {declared}.")
        if declared in self.docx_types:
            names = sniff.zip_names(tail, size) if tail is not None else None
            if names is None or not sniff.is_docx(names):
                return Verdict(found, f"The file is a ZIP archive but not a Word document "
                                      f"({declared}).")
            return Verdict(declared, None)
        return Verdict(found, None)

    def needs_tail(self, declared: str) -> bool:
        return declared in self.docx_types


@dataclass(frozen=True)
class Verdict:
    """What the bytes sniffed as, and why they were refused (None when accepted)."""

    sniffed: str | None
    problem: str | None


DOCUMENTS = UploadPolicy(
    use="documents",
    content_types={
        sniff.PDF: sniff.PDF,
        sniff.TEXT: sniff.TEXT,
        sniff.MARKDOWN: sniff.TEXT,
        sniff.DOCX: sniff.ZIP,
        sniff.PNG: sniff.PNG,
        sniff.JPEG: sniff.JPEG,
    },
    max_bytes=25 * MiB,
)

#: Logos and favicons: raster images only. SVG is refused: it can carry script,
#: and these files are served from the platform's own origin.
BRANDING_IMAGES = UploadPolicy(
    use="branding images",
    content_types={sniff.PNG: sniff.PNG, sniff.JPEG: sniff.JPEG, sniff.WEBP: sniff.WEBP,
                   sniff.ICO: sniff.ICO},
    max_bytes=1 * MiB,
)

EXTENSIONS: dict[str, str] = {
    sniff.PDF: ".pdf",
    sniff.TEXT: ".txt",
    sniff.MARKDOWN: ".md",
    sniff.DOCX: ".docx",
    sniff.PNG: ".png",
    sniff.JPEG: ".jpg",
}

_UNSAFE = re.compile(r"[\\/]+")
_SPACES = re.compile(r"\s+")
MAX_DISPLAY_NAME = 200


def sanitize_display_name(name: str, *, fallback: str = "document") -> str:
    """A title safe to show and to put in a header: no control or format
    characters, no path separators, no leading dots, bounded length."""
    cleaned = "".join(
        ch for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    )
    cleaned = _UNSAFE.sub("_", cleaned)
    cleaned = _SPACES.sub(" ", cleaned).strip().lstrip(".").strip()
    return cleaned[:MAX_DISPLAY_NAME].rstrip() or fallback


def download_filename(title: str, content_type: str) -> str:
    """The sanitized title, with the extension the content type implies."""
    name = sanitize_display_name(title)
    extension = EXTENSIONS.get(content_type, "")
    if extension and not name.lower().endswith(extension):
        name += extension
    return name


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266/8187)."""
    ascii_name = (
        unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
        .replace('"', "'").replace("\\", "_")
    ) or "download"
    return (f"attachment; filename=\"{ascii_name}\"; "
            f"filename*=UTF-8''{quote(filename, safe='')}")


def object_name(*, solution_id: str, account_id: str, use: str, resource_id: str) -> str:
    """``<solution>/<account>/<use>/<id>/<random>``: from ids only, fresh per upload."""
    for part in (solution_id, account_id, use, resource_id):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"unsafe object name part {part!r}")
    return f"{solution_id}/{account_id}/{use}/{resource_id}/{secrets.token_hex(16)}"
