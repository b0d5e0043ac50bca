"""Text from a source document's bytes: TXT, Markdown, PDF (pypdf), DOCX (python-docx).

Pure and synchronous (the service runs it in a worker thread with a deadline).
Every way a file can be unusable ends in a :class:`Problem` that says what is
wrong with *the file* — an unsupported type (415), no text at all, a damaged or
encrypted PDF, a ZIP bomb (422) — never in a 500. Headings are kept as Markdown
``#`` lines so the chunker can cut along them whatever the original format.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from core.kernel.errors import Problem, Unprocessable

PDF = "application/pdf"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

#: content type → extractor name; anything else cannot be a source of truth.
SUPPORTED: dict[str, str] = {TEXT: "text", MARKDOWN: "markdown", PDF: "pdf", DOCX: "docx"}

MAX_TEXT_CHARS = 2_000_000
MAX_PDF_PAGES = 2_000
#: Uncompressed size a .docx may unpack to (its XML is parsed in memory).
MAX_DOCX_UNPACKED = 200 * 1024 * 1024

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_HEADING_STYLE = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)


class UnsupportedSourceType(Problem):
    status = 415
    type_slug = "unsupported-source-type"


class EmptySource(Unprocessable):
    type_slug = "empty-source"


class UnreadableSource(Unprocessable):
    type_slug = "unreadable-source"


class SourceTooLarge(Unprocessable):
    type_slug = "source-too-large"


@dataclass(frozen=True)
class Extracted:
    text: str
    extractor: str
    pages: int | None = None


def check_supported(content_type: str) -> str:
    """The extractor for ``content_type``, or 415 naming the supported types."""
    extractor = SUPPORTED.get(content_type)
    if extractor is None:
        allowed = ", ".join(sorted(SUPPORTED))
        raise UnsupportedSourceType(
            f"Documents of type {content_type[:100]!r} cannot be a source of truth: no text "
            f"can be extracted from them. Supported types: {allowed}.")
    return extractor


def extract(data: bytes, content_type: str) -> Extracted:
    """The document's text, normalised; raises a problem when there is none to index."""
    extractor = check_supported(content_type)
    pages: int | None = None
    if extractor in ("text", "markdown"):
        text = _plain(data)
    elif extractor == "pdf":
        text, pages = _pdf(data)
    else:
        text = _docx(data)
    text = normalise(text)
    if len(text) > MAX_TEXT_CHARS:
        raise SourceTooLarge(
            f"The document has {len(text)} characters of text; at most {MAX_TEXT_CHARS} "
            f"can be indexed. Split it into smaller documents.")
    if not any(ch.isalnum() for ch in text):
        hint = (" (a scanned PDF holds images, not text: run it through OCR first)"
                if extractor == "pdf" else "")
        raise EmptySource(f"The document contains no text to index{hint}.")
    return Extracted(text=text, extractor=extractor, pages=pages)


def normalise(text: str) -> str:
    """NFC, Unix newlines, no control characters, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text.replace("\f", "\n\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _plain(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableSource("The text file is not valid UTF-8; save it as UTF-8 and "
                               "upload it again.") from None


def _pdf(data: bytes) -> tuple[str, int]:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files warn per object
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileNotDecryptedError("password protected")
        count = len(reader.pages)
        if count > MAX_PDF_PAGES:
            raise SourceTooLarge(f"The PDF has {count} pages; at most {MAX_PDF_PAGES} can be "
                                 f"indexed.")
        parts = [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError:
        raise UnreadableSource("The PDF is password protected; upload an unprotected "
                               "copy.") from None
    except Problem:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, NotImplementedError, ZeroDivisionError) as exc:
        # A damaged file can trip any of these inside the parser.
        raise UnreadableSource(f"The PDF could not be read ({type(exc).__name__}); it may be "
                               f"damaged.") from None
    return "\n\n".join(part.strip() for part in parts), count


def _docx(data: bytes) -> str:
    import docx
    from docx.table import Table

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UnreadableSource("The .docx file is not a valid ZIP archive.") from None
    if unpacked > MAX_DOCX_UNPACKED:
        raise SourceTooLarge(f"The .docx unpacks to {unpacked} bytes; at most "
                             f"{MAX_DOCX_UNPACKED} are read.")
    lines: list[str] = []
    try:
        document = docx.Document(io.BytesIO(data))
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    cells = [cell.text.strip() for cell in row.cells]
                    if any(cells):
                        lines.append(" | ".join(cells))
                lines.append("")
                continue
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            level = _heading_level(style)
            lines.append(f"{'#' * level} {text}" if level else text)
            lines.append("")
    except Problem:
        raise
    except Exception as exc:  # python-docx/lxml raise many types on a broken package
        raise UnreadableSource(f"The .docx file could not be read ({type(exc).__name__}); "
                               f"it may be damaged.") from None
    return "\n".join(lines)


def _heading_level(style: str) -> int:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style.strip())
    return int(match.group(1)) if match else 0
