"""KuCoin's request signature against the published vectors, and the venue's check of it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.secrets import Secret
from mm.venues.kucoin import signing
from mm.venues.kucoin.signing import (
    MAX_CLOCK_SKEW_MS,
    Credentials,
    Refusal,
    Signer,
    check_request,
    endpoint,
    prehash,
    sign,
    sign_request,
    signed_passphrase,
)
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
VECTORS: list[dict[str, str]] = MESSAGES["signature_vectors"]
SIGNATURES = [v for v in VECTORS if "expected_sign" in v]
PASSPHRASES = [v for v in VECTORS if "expected_passphrase_header_v2" in v]
NOW = 1_547_015_186_532
SIM = Credentials(Secret("mm-sim-key"), Secret("mm-sim-secret"), Secret("mm-sim-passphrase"))


def test_the_fixture_holds_both_kinds_of_vector() -> None:
    assert len(SIGNATURES) == 4
    assert len(PASSPHRASES) == 1
    assert any("official" in v["source"] for v in SIGNATURES)


@pytest.mark.parametrize("vector", SIGNATURES, ids=lambda v: v["prehash"][:40])
def test_signatures_match_the_published_vectors(vector: dict[str, str]) -> None:
    assert sign(vector["secret"], vector["prehash"]) == vector["expected_sign"]


@pytest.mark.parametrize("vector", PASSPHRASES)
def test_the_passphrase_header_matches_its_vector(vector: dict[str, str]) -> None:
    credentials = Credentials(Secret("k"), Secret(vector["secret"]), Secret(vector["passphrase"]))
    assert signed_passphrase(credentials) == vector["expected_passphrase_header_v2"]


def test_a_request_signs_the_prehash_the_venue_documents() -> None:
    """The legacy docs' example: the timestamp, the method, the path and the JSON body sent."""
    docs = SIGNATURES[0]
    credentials = Credentials(Secret("key-id"), Secret(docs["secret"]), Secret("pass"), "3")
    body = '{"currency":"BTC"}'
    assert prehash(NOW, "POST", "/api/v1/deposit-addresses", body) == docs["prehash"]
    headers = sign_request(credentials, NOW, "POST", "/api/v1/deposit-addresses", body)
    assert headers == {
        "KC-API-KEY": "key-id",
        "KC-API-SIGN": docs["expected_sign"],
        "KC-API-TIMESTAMP": str(NOW),
        "KC-API-PASSPHRASE": sign(docs["secret"], "pass"),
        "KC-API-KEY-VERSION": "3",
    }


@pytest.mark.parametrize(
    "vector", [v for v in SIGNATURES if v["prehash"][:1].isdigit()], ids=lambda v: v["prehash"][:40]
)
def test_the_signer_matches_the_published_vectors(vector: dict[str, str]) -> None:
    """The order path's signer (its HMAC keyed once, copied per request) signs each vector's
    prehash as ``sign`` does, from the body's bytes."""
    credentials = Credentials(Secret("k"), Secret(vector["secret"]), Secret("p"))
    signer = Signer(credentials)
    text = vector["prehash"]
    digits = len(text) - len(text.lstrip("0123456789"))
    stamp, rest = int(text[:digits]), text[digits:]
    method = next(m for m in ("GET", "POST", "DELETE", "PUT") if rest.startswith(m))
    path, _, body = rest[len(method) :].partition("{")
    body = "{" + body if body else ""
    assert signer.signature(stamp, method, path, body) == vector["expected_sign"]
    assert (
        signer.signature_bytes(stamp, method, path, body.encode()).decode()
        == (vector["expected_sign"])
    )
    assert repr(signer) == "Signer(***)"


@given(
    stamp=st.integers(min_value=0, max_value=10**13),
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_?=&", max_size=60),
    body=st.text(max_size=200),
)
def test_the_signer_answers_what_sign_request_does(
    stamp: int, method: str, path: str, body: str
) -> None:
    endpoint_ = "/" + path
    signer = Signer(SIM)
    assert signer.headers(stamp, method, endpoint_, body) == sign_request(
        SIM, stamp, method, endpoint_, body
    )
    with pytest.raises(ValueError, match="not a KuCoin request method"):
        signer.signature(stamp, method.lower(), endpoint_, body)


def test_a_get_signs_its_query_as_sent_not_url_encoded() -> None:
    vector = next(v for v in SIGNATURES if "GET" in v["prehash"])
    path = endpoint("/api/v1/hf/orders/active", {"symbol": "BTC-USDT"})
    assert path == "/api/v1/hf/orders/active?symbol=BTC-USDT"
    assert prehash(NOW, "GET", path) == vector["prehash"]
    assert sign(vector["secret"], prehash(NOW, "GET", path)) == vector["expected_sign"]
    spaced = endpoint("/api/v1/x", {"a": "1 2", "b": "c,d"})
    assert spaced == "/api/v1/x?a=1 2&b=c,d"  # (the URL sent encodes it; the prehash does not)
    assert endpoint("/api/v1/timestamp") == "/api/v1/timestamp"


def test_bad_arguments_fail_naming_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="key version"):
        Credentials(Secret("k"), Secret("s"), Secret("p"), "1")
    with pytest.raises(ValueError, match="method"):
        prehash(NOW, "get", "/api/v1/timestamp")
    with pytest.raises(ValueError, match="absolute path"):
        endpoint("api/v1/timestamp")


def test_credentials_never_show_their_secrets() -> None:
    shown = repr(SIM) + str(SIM)
    for secret in ("mm-sim-key", "mm-sim-secret", "mm-sim-passphrase"):
        assert secret not in shown


def checked(
    headers: dict[str, str], method: str, path: str, body: str, now_ms: int = NOW
) -> Refusal | None:
    return check_request({"mm-sim-key": SIM}, headers, method, path, body, now_ms)


@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.from_regex(
        r"/api/v[123]/[a-z/-]{1,30}(\?[a-z]{1,8}=[A-Za-z0-9-]{1,12})?", fullmatch=True
    ),
    body=st.text(max_size=200),
    skew=st.integers(-MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS),
)
def test_what_is_signed_passes_the_venues_check(
    method: str, path: str, body: str, skew: int
) -> None:
    headers = sign_request(SIM, NOW + skew, method, path, body)
    assert checked(headers, method, path, body) is None
    lowered = {name.lower(): value for name, value in headers.items()}
    assert checked(lowered, method, path, body) is None  # HTTP header names have no case


@given(
    body=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=200),
    data=st.data(),
)
def test_any_change_to_what_was_signed_is_refused(body: str, data: st.DataObject) -> None:
    headers = sign_request(SIM, NOW, "POST", "/api/v1/hf/orders", body)
    at = data.draw(st.integers(0, len(body) - 1))
    replacement = data.draw(
        st.characters(blacklist_categories=["Cs"]).filter(lambda c: c != body[at])
    )
    changed = body[:at] + replacement + body[at + 1 :]
    refusal = checked(headers, "POST", "/api/v1/hf/orders", changed)
    assert refusal == Refusal("400005", "Invalid KC-API-SIGN")
    assert checked(headers, "PUT", "/api/v1/hf/orders", body) == refusal
    assert checked(headers, "POST", "/api/v1/hf/orders/test", body) == refusal


def test_each_refusal_carries_the_venues_code() -> None:
    path, body = "/api/v1/hf/orders", '{"symbol":"BTC-USDT"}'
    good = sign_request(SIM, NOW, "POST", path, body)
    missing = {name: value for name, value in good.items() if name != "KC-API-PASSPHRASE"}
    assert checked(missing, "POST", path, body).code == "400001"  # type: ignore[union-attr]
    late = checked(good, "POST", path, body, now_ms=NOW + MAX_CLOCK_SKEW_MS + 1)
    early = checked(good, "POST", path, body, now_ms=NOW - MAX_CLOCK_SKEW_MS - 1)
    assert late == early == Refusal("400002", "Invalid KC-API-TIMESTAMP")
    assert checked({**good, "KC-API-TIMESTAMP": "1e12"}, "POST", path, body) == late
    assert checked({**good, "KC-API-TIMESTAMP": "١٢٣"}, "POST", path, body) == late
    unknown = checked({**good, "KC-API-KEY": "someone-else"}, "POST", path, body)
    assert unknown == Refusal("400003", "KC-API-KEY not exists")
    # The passphrase in clear (key version 1's way) is not the signed one.
    clear = checked({**good, "KC-API-PASSPHRASE": "mm-sim-passphrase"}, "POST", path, body)
    assert clear == Refusal("400004", "KC-API-PASSPHRASE error")
    other_secret = Credentials(SIM.key, Secret("not-the-secret"), SIM.passphrase)
    forged = sign_request(other_secret, NOW, "POST", path, body)
    assert checked(forged, "POST", path, body) is not None
    invalid = Refusal("400005", "Invalid KC-API-SIGN")
    assert checked({**good, "KC-API-SIGN": "é"}, "POST", path, body) == invalid
    # What no client could have signed (a lone surrogate) is refused, not an error.
    assert checked(good, "POST", path, "\ud800") == invalid
    assert checked({**good, "KC-API-SIGN": "\ud800"}, "POST", path, body) == invalid
    assert checked({**good, "KC-API-PASSPHRASE": "\ud800"}, "POST", path, body) == Refusal(
        "400004", "KC-API-PASSPHRASE error"
    )


@given(
    secret=st.text(min_size=1, max_size=200),
    stamp=st.integers(min_value=0, max_value=10**13),
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_?=&", max_size=60),
    body=st.binary(max_size=300),
)
def test_the_signers_hashes_sign_as_the_standard_librarys_hmac(
    secret: str, stamp: int, method: str, path: str, body: bytes
) -> None:
    """The Signer's own HMAC (its inner and outer SHA-256 keyed once) against ``hmac``: secrets
    shorter than, as long as and longer than SHA-256's 64-byte block (hashed first), any body."""
    credentials = Credentials(Secret("k"), Secret(secret), Secret("p"))
    endpoint_ = "/" + path
    expected = hmac.new(
        secret.encode(), f"{stamp}{method}{endpoint_}".encode() + body, hashlib.sha256
    ).digest()
    signer = Signer(credentials)
    assert signer.signature_bytes(stamp, method, endpoint_, body) == base64.b64encode(expected)
    # Signing never changes the keyed states: the same request signs the same again.
    assert signer.signature_bytes(stamp, method, endpoint_, body) == base64.b64encode(expected)


@pytest.mark.parametrize("openssl", [False, True], ids=["interpreter's sha256", "openssl's"])
@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 128, 200])
def test_the_signer_keys_secrets_of_every_length_at_the_block_size(
    length: int, openssl: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either SHA-256 the Signer may be built on (OpenSSL's where the interpreter has none)."""
    if openssl:
        monkeypatch.setattr(signing, "_sha256", hashlib.sha256)
    secret = "s" * length
    credentials = Credentials(Secret("k"), Secret(secret), Secret("p"))
    expected = hmac.new(secret.encode(), b"1POST/x{}", hashlib.sha256).digest()
    assert Signer(credentials).signature_bytes(1, "POST", "/x", b"{}") == base64.b64encode(expected)
