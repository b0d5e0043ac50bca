"""Tell a file's type from its bytes, never from its name or declared type.

Pure functions (no I/O): the storage service fetches the first bytes (and for
ZIP containers the tail with the central directory) and asks these. The set
is deliberately small: only the types an upload policy allows are recognised.
"""

from __future__ import annotations

import codecs
import io
import zipfile

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
ICO = "image/x-icon"
ZIP = "application/zip"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

HEAD_BYTES = 8192
# Enough for the end-of-central-directory record, a maximal comment and a
# generous central directory (a .docx lists a few dozen entries).
ZIP_TAIL_BYTES = 256 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"PK\x03\x04", ZIP),
    (b"\x00\x00\x01\x00", ICO),
)
# C0 controls a text file may contain: tab, line feed, form feed, carriage return.
_TEXT_CONTROLS = frozenset("\t\n\f\r")


def sniff(head: bytes, *, truncated: bool) -> str | None:
    """The type the first bytes show, or None when they match nothing we accept.

    ``truncated`` says more bytes follow ``head`` (a multi-byte UTF-8
    character may then be cut at the end without the text being invalid).
    """
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if is_text(head, truncated=truncated):
        return TEXT
    return None


def is_text(data: bytes, *, truncated: bool = False) -> bool:
    """UTF-8 without NULs or other control characters (an optional BOM is fine)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(data, final=not truncated)
    except UnicodeDecodeError:
        return False
    text = text.removeprefix("\ufeff")
    return not any(
        (ord(ch) < 0x20 and ch not in _TEXT_CONTROLS) or ord(ch) == 0x7F for ch in text
    )


class _TailFile(io.RawIOBase):
    """A seekable view of a file of ``size`` bytes of which only the tail is known.

    zipfile reads only the end record and the central directory to list
    names, so the tail suffices; reading before it raises (treated as "not
    a recognisable ZIP").
    """

    def __init__(self, tail: bytes, size: int) -> None:
        self._tail = tail
        self._size = size
        self._start = size - len(tail)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        if self._pos < self._start:
            raise OSError("read outside the fetched tail")
        chunk = self._tail[self._pos - self._start : self._pos - self._start + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def zip_names(tail: bytes, size: int) -> list[str] | None:
    """Entry names of a ZIP file from its last bytes, or None when unreadable."""
    if size < len(tail):
        return None
    try:
        with zipfile.ZipFile(io.BufferedReader(_TailFile(tail, size))) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None


def is_docx(names: list[str]) -> bool:
    """A WordprocessingML package: content-types part and the main document part."""
    entries = set(names)
    return "[Content_Types].xml" in entries and "word/document.xml" in entries
