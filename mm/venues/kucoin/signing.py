"""KuCoin's request signature, pure: what a private REST request carries, and its check.

The venue's scheme (KuCoin's API documentation, "Authentication"; the official SDK's signer
does the same):

* ``KC-API-SIGN`` is ``base64(HMAC-SHA256(secret, prehash))`` with the prehash
  ``timestamp + METHOD + endpoint + body``: the timestamp in milliseconds as sent in
  ``KC-API-TIMESTAMP``, the method in capitals, the endpoint the path with its query string as
  sent and *not* URL-encoded (``/api/v1/hf/orders/active?symbol=BTC-USDT``), and the body the
  exact JSON bytes sent (``""`` for GET and DELETE, which carry none);
* ``KC-API-PASSPHRASE`` is, for API key versions 2 and 3, the passphrase itself signed the same
  way (``base64(HMAC-SHA256(secret, passphrase))``); version 1 sent it in clear and is refused
  here (KuCoin no longer issues such keys);
* ``KC-API-KEY`` and ``KC-API-KEY-VERSION`` name the key; the venue refuses a timestamp more
  than 5 s from its own clock (code 400002) and a wrong signature (400005).

``Credentials`` holds the key, secret and passphrase as ``Secret``s: they print as ``***``
everywhere. ``sign_request`` builds the headers of one request; ``Signer`` does the same for
one key with what never changes computed once (the signed passphrase; the key's headers; the
HMAC's two SHA-256 states keyed with the secret, RFC 2104's inner and outer hashes, copied for
each request), for the order path. Those states are the interpreter's own SHA-256 (``_sha2``,
``_sha256`` before Python 3.12; OpenSSL's through ``hashlib`` where it has none), whose copy
is a copy of its state: on the order path, caches cold (one request a leg), a signature took
~17 us with a keyed ``hmac`` object (each copy three OpenSSL digest contexts), ~13 us with
OpenSSL's two hashes and ~8.5 us with the interpreter's. ``check_request`` is the venue's side
of it (for the simulator's KuCoin face), answering why a request is refused, or None.

Fails: ``ValueError`` for a key version other than 2 or 3, a method that is not one of the
venue's, or an endpoint that is not an absolute path; never for a secret's content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

import attrs

from mm.secrets import Secret

__all__ = [
    "KEY_VERSIONS",
    "MAX_CLOCK_SKEW_MS",
    "METHODS",
    "Credentials",
    "Refusal",
    "Signer",
    "check_request",
    "endpoint",
    "prehash",
    "sign",
    "sign_request",
    "signed_passphrase",
]

KEY_VERSIONS = ("2", "3")
METHODS = ("GET", "POST", "DELETE", "PUT")
MAX_CLOCK_SKEW_MS = 5_000  # the venue's window around its clock for KC-API-TIMESTAMP
# HMAC-SHA256 (RFC 2104): the key padded to SHA-256's block, XORed with these for the inner and
# the outer hash (as the standard library's ``hmac`` does), each hash the interpreter's own.
try:
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python 3.11
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:  # an interpreter built without it: OpenSSL's
        _sha256 = hashlib.sha256
_BLOCK = 64
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))

# Header names, as the venue spells them.
KEY = "KC-API-KEY"
SIGN = "KC-API-SIGN"
TIMESTAMP = "KC-API-TIMESTAMP"
PASSPHRASE = "KC-API-PASSPHRASE"
KEY_VERSION = "KC-API-KEY-VERSION"


@attrs.frozen
class Credentials:
    """An API key of the account: its id, secret and passphrase, and the key's version."""

    key: Secret
    secret: Secret
    passphrase: Secret
    version: str = attrs.field(default="2")

    @version.validator
    def _known_version(self, _: object, value: str) -> None:
        if value not in KEY_VERSIONS:
            raise ValueError(
                f"KuCoin API key version must be one of {', '.join(KEY_VERSIONS)}, got {value!r}"
            )


@attrs.frozen
class Refusal:
    """Why the venue refuses a signed request: its error code and message."""

    code: str
    msg: str


def sign(secret: str, text: str) -> str:
    """``base64(HMAC-SHA256(secret, text))``, as text."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_passphrase(credentials: Credentials) -> str:
    """``KC-API-PASSPHRASE`` for key versions 2 and 3: the passphrase signed with the secret."""
    return sign(credentials.secret.reveal(), credentials.passphrase.reveal())


def endpoint(path: str, query: Mapping[str, str] | None = None) -> str:
    """The path with its query string as sent, not URL-encoded (what the prehash reads), the
    parameters in the order given."""
    if not path.startswith("/"):
        raise ValueError(f"a KuCoin endpoint is an absolute path, got {path!r}")
    if not query:
        return path
    return path + "?" + "&".join(f"{name}={value}" for name, value in query.items())


def prehash(timestamp_ms: int, method: str, endpoint_: str, body: str = "") -> str:
    """``timestamp + METHOD + endpoint + body``: what ``KC-API-SIGN`` signs."""
    if method not in METHODS:
        raise ValueError(f"not a KuCoin request method: {method!r}")
    return f"{timestamp_ms}{method}{endpoint_}{body}"


def sign_request(
    credentials: Credentials, timestamp_ms: int, method: str, endpoint_: str, body: str = ""
) -> dict[str, str]:
    """The authentication headers of one private request (``body``: the exact JSON sent)."""
    text = prehash(timestamp_ms, method, endpoint_, body)
    return {
        KEY: credentials.key.reveal(),
        SIGN: sign(credentials.secret.reveal(), text),
        TIMESTAMP: str(timestamp_ms),
        PASSPHRASE: signed_passphrase(credentials),
        KEY_VERSION: credentials.version,
    }


class Signer:
    """``sign_request`` for one key, its constant parts computed once (see the module). Its
    repr shows no secret; ``static_headers`` and every signature are secrets (headers only)."""

    __slots__ = ("_inner", "_outer", "static_headers")

    def __init__(self, credentials: Credentials) -> None:
        key = credentials.secret.reveal().encode()
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = _sha256(key.translate(_INNER_PAD))
        self._outer = _sha256(key.translate(_OUTER_PAD))
        self.static_headers: tuple[tuple[str, str], ...] = (
            (KEY, credentials.key.reveal()),
            (PASSPHRASE, signed_passphrase(credentials)),
            (KEY_VERSION, credentials.version),
        )

    def __repr__(self) -> str:
        return "Signer(***)"

    def signature(self, timestamp_ms: int, method: str, endpoint_: str, body: str = "") -> str:
        """``KC-API-SIGN`` of one request (``sign`` of its ``prehash``)."""
        return self.signature_bytes(timestamp_ms, method, endpoint_, body.encode()).decode("ascii")

    def signature_bytes(
        self, timestamp_ms: int, method: str, endpoint_: str, body: bytes = b""
    ) -> bytes:
        """``signature`` of a body given as the bytes sent, as ASCII bytes."""
        if method not in METHODS:
            raise ValueError(f"not a KuCoin request method: {method!r}")
        inner = self._inner.copy()
        inner.update(f"{timestamp_ms}{method}{endpoint_}".encode())
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return binascii.b2a_base64(outer.digest(), newline=False)

    def headers(
        self, timestamp_ms: int, method: str, endpoint_: str, body: str = ""
    ) -> dict[str, str]:
        """What ``sign_request`` answers for the same request."""
        return {
            KEY: self.static_headers[0][1],
            SIGN: self.signature(timestamp_ms, method, endpoint_, body),
            TIMESTAMP: str(timestamp_ms),
            PASSPHRASE: self.static_headers[1][1],
            KEY_VERSION: self.static_headers[2][1],
        }


def check_request(
    keys: Mapping[str, Credentials],
    headers: Mapping[str, str],
    method: str,
    endpoint_: str,
    body: str,
    now_ms: int,
) -> Refusal | None:
    """The venue's check of a private request against the API keys it knows (by key id): None
    when it passes, else the venue's refusal. Header names are matched without regard to case,
    as HTTP does. The messages are those the venue answers with where they were recorded
    (400002, 400005), else its documented meanings (KuCoin's docs, "System error codes")."""
    lowered = {name.lower(): value for name, value in headers.items()}
    key, signature, stamp, passphrase = (
        lowered.get(name.lower()) for name in (KEY, SIGN, TIMESTAMP, PASSPHRASE)
    )
    if key is None or signature is None or stamp is None or passphrase is None:
        return Refusal(
            "400001",
            "Any of KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE is missing "
            "in your request header",
        )
    if not (stamp.isascii() and stamp.isdigit()) or abs(int(stamp) - now_ms) > MAX_CLOCK_SKEW_MS:
        return Refusal("400002", "Invalid KC-API-TIMESTAMP")
    credentials = keys.get(key)
    if credentials is None:
        return Refusal("400003", "KC-API-KEY not exists")
    if not hmac.compare_digest(
        passphrase.encode(errors="replace"), signed_passphrase(credentials).encode()
    ):
        return Refusal("400004", "KC-API-PASSPHRASE error")
    if method not in METHODS:
        return Refusal("400005", "Invalid KC-API-SIGN")
    try:
        expected = sign(credentials.secret.reveal(), prehash(int(stamp), method, endpoint_, body))
        signed = signature.encode()
    except UnicodeEncodeError:  # (a lone surrogate: no bytes were ever signed as that)
        return Refusal("400005", "Invalid KC-API-SIGN")
    if not hmac.compare_digest(signed, expected.encode()):
        return Refusal("400005", "Invalid KC-API-SIGN")
    return None
