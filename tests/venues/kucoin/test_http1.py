"""The order lane's HTTP/1.1, pure: a request's bytes, and answers read back however the bytes
are split (by Content-Length, chunked, to the end of the stream; closes; content codings)."""

from __future__ import annotations

import gzip
import zlib

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.kucoin.http1 import (
    MAX_HEAD,
    Answer,
    AnswerReader,
    HttpError,
    header_block,
    request_bytes,
)

HEADERS = [("Host", "api.kucoin.com"), ("Content-Type", "application/json"), ("KC-API-KEY", "k")]
BODY = b'{"clientOid":"mm-1","symbol":"BTC-USDT","side":"buy"}'


def test_a_request_is_what_h11_writes_for_it() -> None:
    ours = request_bytes("POST", "/api/v1/hf/orders/sync", header_block(HEADERS), BODY)
    connection = h11.Connection(h11.CLIENT)
    length = ("Content-Length", str(len(BODY)))
    theirs = connection.send(
        h11.Request(method="POST", target="/api/v1/hf/orders/sync", headers=[*HEADERS, length])
    )
    theirs += connection.send(h11.Data(data=BODY)) or b""
    theirs += connection.send(h11.EndOfMessage()) or b""
    assert ours == theirs
    # ... which a server reads back as sent.
    server = h11.Connection(h11.SERVER)
    server.receive_data(ours)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"POST", b"/api/v1/hf/orders/sync")
    data = server.next_event()
    assert isinstance(data, h11.Data)
    assert data.data == BODY


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/a b", HEADERS),
        ("/a\r\nX: 1", HEADERS),
        ("/a", [("X-Bad", "1\r\nInjected: 2")]),
        ("/a", [("Bad Name", "1")]),
        ("/a", [("Bad:Name", "1")]),
    ],
)
def test_a_request_that_would_break_the_message_is_refused(
    target: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValueError, match=r"not an HTTP|line break"):
        request_bytes("POST", target, header_block(headers), b"")


def answer_bytes(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"HTTP/1.1 {status} X\r\n{head}\r\n".encode() + body


def chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)
    return framed + b"0\r\nTrailer: t\r\n\r\n"


def read_all(data: bytes, cuts: list[int]) -> list[Answer]:
    reader = AnswerReader()
    answers: list[Answer] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        reader.feed(data[start:cut])
        start = cut
        while (answer := reader.next()) is not None:
            answers.append(answer)
    return answers


@given(
    bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    chunk=st.integers(min_value=1, max_value=64),
    cuts=st.lists(st.integers(min_value=0, max_value=4_000), max_size=12),
)
def test_answers_read_the_same_however_the_bytes_come(
    bodies: list[bytes], chunk: int, cuts: list[int]
) -> None:
    stream = b""
    for index, body in enumerate(bodies):
        if index % 2:
            stream += answer_bytes(200, [("Transfer-Encoding", "chunked")], chunked(body, chunk))
        else:
            stream += answer_bytes(
                200, [("Content-Length", str(len(body))), ("gw-ratelimit-limit", "4000")], body
            )
    answers = read_all(stream, [cut for cut in cuts if cut <= len(stream)])
    assert [answer.body for answer in answers] == bodies
    assert all(answer.status == 200 and not answer.close for answer in answers)
    assert answers[0].headers["gw-ratelimit-limit"] == "4000"


def test_headers_are_lower_case_and_repeats_joined() -> None:
    data = answer_bytes(429, [("Content-Length", "0"), ("X-A", "1"), ("x-a", " 2 ")], b"")
    (answer,) = read_all(data, [])
    assert answer.status == 429
    assert answer.headers == {"content-length": "0", "x-a": "1, 2"}


def test_an_interim_answer_is_skipped() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + answer_bytes(200, [("Content-Length", "2")], b"ok")
    assert [answer.body for answer in read_all(data, [])] == [b"ok"]


def test_the_server_says_it_closes() -> None:
    closes = answer_bytes(200, [("Content-Length", "2"), ("Connection", "close")], b"ok")
    (answer,) = read_all(closes, [])
    assert answer.close
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert read_all(old, [])[0].close
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    assert not read_all(kept, [])[0].close


def test_a_body_without_a_length_runs_to_the_end_of_the_stream() -> None:
    reader = AnswerReader()
    reader.feed(answer_bytes(200, [], b"to the"))
    assert reader.next() is None
    reader.feed(b" end")
    answer = reader.eof()
    assert answer is not None
    assert (answer.body, answer.close) == (b"to the end", True)
    assert reader.eof() is None


def test_an_answer_cut_short_by_the_end_of_the_stream_is_an_error() -> None:
    reader = AnswerReader()
    reader.feed(answer_bytes(200, [("Content-Length", "10")], b"short"))
    assert reader.next() is None
    assert reader.pending
    with pytest.raises(HttpError, match="middle of an answer"):
        reader.eof()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate
        ("identity", lambda data: data),
    ],
)
def test_content_codings_are_decoded(coding: str, encode: object) -> None:
    assert callable(encode)
    encoded = encode(BODY)
    data = answer_bytes(
        200, [("Content-Encoding", coding), ("Content-Length", str(len(encoded)))], encoded
    )
    assert read_all(data, [])[0].body == BODY


@pytest.mark.parametrize(
    "data",
    [
        b"HTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
    ],
)
def test_what_is_not_http_is_an_error(data: bytes) -> None:
    with pytest.raises(HttpError):
        read_all(data, [])


def test_a_head_too_long_is_an_error() -> None:
    reader = AnswerReader()
    reader.feed(b"HTTP/1.1 200 OK\r\nX: " + b"x" * MAX_HEAD)
    with pytest.raises(HttpError, match="over"):
        reader.next()
