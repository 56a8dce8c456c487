"""HTTP/1.1 for the order lane, pure: a request's bytes, and answers read from a byte stream.

Hand-written because h11 (the library httpx and httpcore use) costs more than the lane's whole
budget on this path. Measured on the 2-core machine the benchmarks run on (loaded: compare the
ratios): h11's client ``send`` of an order request (request line, 8 headers, body, end of
message) took 150 us in one session, where the lane's budget for place to written is 100 us; in
a later session, 648 us against 12 us for ``request_bytes`` of the same request (54 times),
and h11's reading of a short answer back (status, 8 headers, a 200-byte body, and starting the
next cycle) about 570 us against 133 us for ``AnswerReader`` (4 times). What the venue reads is
what h11 writes for the same request (a test compares them): ``METHOD target HTTP/1.1``, the
headers as given, ``Content-Length``, the body.

``request_bytes`` joins a request. ``AnswerReader`` is fed what the socket gives and hands back
each complete ``Answer`` (status, headers with lower-case names, the body, whether the server
closes after it): bodies by ``Content-Length``, chunked (``Transfer-Encoding: chunked``), or to
the end of the stream when neither is said; ``gzip`` and ``deflate`` content is decoded
(``identity`` is asked for; a server may still send them). ``1xx`` interim answers are skipped.

Fails: ``ValueError`` for a request line or header that would break the message (a space, CR
or LF in the target, CR or LF in a value); ``HttpError`` for an answer that is not HTTP/1.x as
RFC 9112 frames it (a head over 64 KiB, a bad status line, a header without a colon, a bad
length or chunk size, a content coding it cannot decode, a stream that ends mid-answer).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "MAX_HEAD",
    "Answer",
    "AnswerReader",
    "HttpError",
    "header_block",
    "request_bytes",
    "request_line",
]

MAX_HEAD: Final = 65_536  # an answer's status line and headers, at most
_CRLF: Final = b"\r\n"
_UNSAFE_TARGET: Final = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE: Final = re.compile(r"[\r\n\x00]")
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_NO_BODY: Final = frozenset({204, 304})


class HttpError(Exception):
    """An answer that is not HTTP/1.x (see the module)."""


@attrs.frozen
class Answer:
    """One answer: its status, headers (names in lower case, repeats joined by ``, ``), the
    decoded body, and whether the server closes the connection after it."""

    status: int
    headers: dict[str, str]
    body: bytes
    close: bool


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """``Name: value`` lines, each ended by CRLF (see the module for what is refused)."""
    lines = []
    for name, value in headers:
        if not name or _UNSAFE_TARGET.search(name) or ":" in name:
            raise ValueError(f"not an HTTP header name: {name!r}")
        if _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name} has a line break in its value")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def request_line(method: str, target: str) -> bytes:
    """``METHOD target HTTP/1.1`` and its CRLF."""
    if _UNSAFE_TARGET.search(target) or not method or _UNSAFE_TARGET.search(method):
        raise ValueError(f"not an HTTP request target: {method} {target!r}")
    return f"{method} {target} HTTP/1.1\r\n".encode("ascii")


def request_bytes(method: str, target: str, head: bytes, body: bytes) -> bytes:
    """A whole request: the request line, ``head`` (``header_block``'s lines),
    ``Content-Length`` and the body."""
    return b"%s%sContent-Length: %d\r\n\r\n%s" % (
        request_line(method, target),
        head,
        len(body),
        body,
    )


@attrs.define
class _Head:
    status: int
    headers: dict[str, str]
    close: bool
    length: int | None  # None: chunked or to the end of the stream
    chunked: bool


class AnswerReader:
    """Answers read from the bytes of one connection, in order (see the module)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._chunks: list[bytes] = []  # a chunked body's chunks so far

    @property
    def pending(self) -> bool:
        """Whether part of an answer has been read (an answer's bytes, not yet whole)."""
        return bool(self._buffer) or self._head is not None

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next(self) -> Answer | None:
        """The next whole answer, or None until more bytes come."""
        while True:
            if self._head is None:
                head = self._read_head()
                if head is None:
                    return None
                if 100 <= head.status < 200:
                    continue  # an interim answer (100 Continue): the real one follows
                self._head = head
            answer = self._read_body(self._head)
            if answer is not None:
                self._head = None
            return answer

    def eof(self) -> Answer | None:
        """The stream ended: the answer whose body runs to the end of the stream, or None when
        nothing was pending (``HttpError`` when an answer was cut short)."""
        head = self._head
        if head is not None and head.length is None and not head.chunked:
            body = bytes(self._buffer)
            self._buffer.clear()
            self._head = None
            return Answer(head.status, head.headers, _decoded(head.headers, body), close=True)
        if self.pending:
            raise HttpError("the connection ended in the middle of an answer")
        return None

    def _read_head(self) -> _Head | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise HttpError(f"an answer's head is over {MAX_HEAD} bytes")
            return None
        if end > MAX_HEAD:
            raise HttpError(f"an answer's head is over {MAX_HEAD} bytes")
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status_line = lines[0].split(" ", 2)
        if (
            len(status_line) < 2
            or status_line[0] not in ("HTTP/1.1", "HTTP/1.0")
            or len(status_line[1]) != 3
            or not status_line[1].isdigit()
        ):
            raise HttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(status_line[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or line[:1] in " \t":
                raise HttpError(f"not an HTTP header line: {line[:80]!r}")
            key = name.lower()
            value = value.strip(" \t")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        close = "close" in tokens or (status_line[0] == "HTTP/1.0" and "keep-alive" not in tokens)
        coding = headers.get("transfer-encoding")
        chunked = False
        length: int | None = None
        if status in _NO_BODY or 100 <= status < 200:
            length = 0
        elif coding is not None:
            if coding.strip().lower() != "chunked":
                raise HttpError(f"a transfer coding this reader does not know: {coding!r}")
            chunked = True
        elif "content-length" in headers:
            text = headers["content-length"]
            if not (text.isascii() and text.isdigit()):
                raise HttpError(f"not a Content-Length: {text[:40]!r}")
            length = int(text)
        else:
            close = True  # the body runs to the end of the stream
        return _Head(status, headers, close, length, chunked)

    def _read_body(self, head: _Head) -> Answer | None:
        if head.chunked:
            body = self._read_chunks()
            if body is None:
                return None
        elif head.length is None:
            return None  # to the end of the stream (``eof``)
        else:
            if len(self._buffer) < head.length:
                return None
            body = bytes(self._buffer[: head.length])
            del self._buffer[: head.length]
        return Answer(head.status, head.headers, _decoded(head.headers, body), head.close)

    def _read_chunks(self) -> bytes | None:
        while True:
            end = self._buffer.find(_CRLF)
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise HttpError("a chunk's size line is too long")
                return None
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size_text):
                raise HttpError(f"not a chunk size: {size_text[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n\r\n", end)  # after any trailers
                if trailer_end < 0:
                    return None
                del self._buffer[: trailer_end + 4]
                body = b"".join(self._chunks)
                self._chunks = []
                return body
            start = end + 2
            if len(self._buffer) < start + size + 2:
                return None
            if self._buffer[start + size : start + size + 2] != _CRLF:
                raise HttpError("a chunk not ended by CRLF")
            self._chunks.append(bytes(self._buffer[start : start + size]))
            del self._buffer[: start + size + 2]


def _decoded(headers: dict[str, str], body: bytes) -> bytes:
    coding = headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    try:
        if coding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some send
    except zlib.error as error:
        raise HttpError(f"a {coding} body that does not decode: {error}") from None
    raise HttpError(f"a content coding this reader does not know: {coding!r}")
