"""Hyperliquid L1-action signing and signer recovery.

An L1 action (order, cancel, modify, ...) is signed as the venue's official SDK signs it:

1. ``connection_id = keccak256(msgpack(action) || nonce:u64be || vault_flag [|| vault:20]
   [|| 0x00 || expires_after:u64be])``, where ``vault_flag`` is ``0x00`` without a vault
   address and ``0x01`` followed by its 20 bytes with one;
2. the "phantom agent" ``Agent(string source, bytes32 connectionId)``, with ``source`` ``"a"``
   on mainnet and ``"b"`` on testnet, is hashed as EIP-712 typed data in the domain
   ``{name: "Exchange", version: "1", chainId: 1337, verifyingContract: 0x0}``;
3. that 32-byte digest is signed with secp256k1 (RFC 6979 nonces, low ``s``), and the
   signature travels as ``{"r": "0x…", "s": "0x…", "v": 27|28}``.

A user-signed action (``approveAgent``, transfers, withdrawals) is signed by the account's own
key, never by an API wallet, as the SDK's ``sign_user_signed_action`` signs it: the action
itself, with ``signatureChainId`` (the chain the wallet signs on, ``0x66eee`` as the SDK sends)
and ``hyperliquidChain`` (``"Mainnet"`` or ``"Testnet"``: what stops a replay on the other
network) added, is hashed as EIP-712 typed data of its ``HyperliquidTransaction:…`` primary
type in the domain ``{name: "HyperliquidSignTransaction", version: "1", chainId:
signatureChainId, verifyingContract: 0x0}``, and signed like an L1 action's digest.

Everything here is pure and synchronous. The signer sits on the tick-to-order path, so the
constant parts of the EIP-712 hash are computed once at import, and :class:`L1Signer` keeps the
parsed libsecp256k1 key (through ``coincurve``) for its whole life.
"""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs
import msgpack
from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak as _keccak_mod

from mm.secrets import Secret

__all__ = [
    "APPROVE_AGENT",
    "DOMAIN_SEPARATOR",
    "L1Signer",
    "PrivateKeyLike",
    "SignatureError",
    "UserSignedType",
    "action_hash",
    "address_from_private_key",
    "agent_struct_hash",
    "checksum_address",
    "eip712_digest",
    "pack_action",
    "recover_l1_signer",
    "recover_user_signer",
    "sign_l1_action",
    "sign_user_action",
    "user_signed_digest",
]

PrivateKeyLike = str | bytes | Secret
"""A secp256k1 private key: 32 raw bytes, 64 hex digits (``0x`` optional), or a Secret of those."""

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_U64_LIMIT: Final = 1 << 64
_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HEX_ADDRESS = re.compile(r"(?:0[xX])?([0-9a-fA-F]{40})")
_HEX_KEY = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")


class SignatureError(ValueError):
    """A malformed signature (bad ``v``, ``r``/``s`` not hex or out of range) or an unusable one."""


# pycryptodome's digest() reads the hash into ``ctypes.create_string_buffer(32)``, which asks
# ctypes for the type ``c_char * 32``; ctypes caches array types only while one is alive, and a
# type is a cycle (its descriptors point back at it), so every digest made one more type for the
# collector to free (48 a minute at 10 symbols, gc_census). Held here, the cached one is reused.
_DIGEST_BUFFER: Final = ctypes.c_char * 32


def _keccak256(data: bytes) -> bytes:
    return _keccak_mod.new(data=data, digest_bits=256).digest()


# --- EIP-712 constants, computed once ----------------------------------------------------------

_DOMAIN_TYPEHASH: Final = _keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
DOMAIN_SEPARATOR: Final = _keccak256(
    _DOMAIN_TYPEHASH
    + _keccak256(b"Exchange")
    + _keccak256(b"1")
    + (1337).to_bytes(32, "big")
    + bytes(32)  # verifyingContract 0x000…0, left-padded to 32 bytes
)
_AGENT_TYPEHASH: Final = _keccak256(b"Agent(string source,bytes32 connectionId)")
# encodeData(Agent) = typehash || keccak(source) || connectionId; the first 64 bytes are fixed.
_AGENT_PREFIX_MAINNET: Final = _AGENT_TYPEHASH + _keccak256(b"a")
_AGENT_PREFIX_TESTNET: Final = _AGENT_TYPEHASH + _keccak256(b"b")
_DIGEST_PREFIX: Final = b"\x19\x01" + DOMAIN_SEPARATOR


# --- hashing -------------------------------------------------------------------------------------


def _msgpack_default(obj: object) -> object:
    # msgpack packs dict (and its subclasses) natively; other mappings go through here.
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot msgpack an object of type {type(obj).__name__}")


def pack_action(action: Mapping[str, Any]) -> bytes:
    """The msgpack bytes of ``action``, as the SDK packs them (key order kept, smallest ints)."""
    return msgpack.packb(action, default=_msgpack_default)


def _address_bytes(address: str) -> bytes:
    match = _HEX_ADDRESS.fullmatch(address)
    if match is None:
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    return bytes.fromhex(match.group(1))


def action_hash(
    action: Mapping[str, Any], vault_address: str | None, nonce: int, expires_after: int | None
) -> bytes:
    """The 32-byte connection id of an L1 action."""
    if not 0 <= nonce < _U64_LIMIT:
        raise ValueError(f"nonce out of the u64 range: {nonce}")
    data = pack_action(action) + nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address_bytes(vault_address)
    if expires_after is not None:
        if not 0 <= expires_after < _U64_LIMIT:
            raise ValueError(f"expires_after out of the u64 range: {expires_after}")
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return _keccak256(data)


def agent_struct_hash(connection_id: bytes, mainnet: bool) -> bytes:
    """EIP-712 ``hashStruct`` of the phantom agent ``{source: "a"|"b", connectionId}``."""
    if len(connection_id) != 32:
        raise ValueError(f"connection id must be 32 bytes, got {len(connection_id)}")
    prefix = _AGENT_PREFIX_MAINNET if mainnet else _AGENT_PREFIX_TESTNET
    return _keccak256(prefix + connection_id)


def eip712_digest(connection_id: bytes, mainnet: bool) -> bytes:
    """The 32-byte EIP-712 digest that is signed for an L1 action's connection id."""
    return _keccak256(_DIGEST_PREFIX + agent_struct_hash(connection_id, mainnet))


def _l1_digest(
    action: Mapping[str, Any],
    nonce: int,
    vault_address: str | None,
    expires_after: int | None,
    mainnet: bool,
) -> bytes:
    return eip712_digest(action_hash(action, vault_address, nonce, expires_after), mainnet)


# --- keys and addresses --------------------------------------------------------------------------


def checksum_address(address: str) -> str:
    """The EIP-55 mixed-case form of a 20-byte hex address (``0x`` optional on input)."""
    match = _HEX_ADDRESS.fullmatch(address)
    if match is None:
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    lower = match.group(1).lower()
    nibbles = _keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if nibble > "7" else char  # nibble >= 8; "a" to "f" sort after "7"
        for char, nibble in zip(lower, nibbles, strict=False)
    )


@functools.lru_cache(maxsize=1024)
def _address_from_point(point: bytes) -> str:
    # Recovery sees the same few signers over and over: remember their addresses.
    return checksum_address(_keccak256(point)[-20:].hex())


def _address_from_public_key(public_key: PublicKey) -> str:
    return _address_from_point(public_key.format(compressed=False)[1:])


def _secret_bytes(private_key: PrivateKeyLike) -> bytes:
    if isinstance(private_key, Secret):
        private_key = private_key.reveal()
    if isinstance(private_key, bytes):
        if len(private_key) != 32:
            raise ValueError("a raw private key must be 32 bytes")
        return private_key
    match = _HEX_KEY.fullmatch(private_key)
    if match is None:  # never echo the value: it may be a mistyped key
        raise ValueError("a private key must be 64 hex digits, 0x optional")
    return bytes.fromhex(match.group(1))


def _parse_private_key(private_key: PrivateKeyLike) -> PrivateKey:
    secret = _secret_bytes(private_key)
    if not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
        raise ValueError("private key out of the secp256k1 range")
    return PrivateKey(secret)


def address_from_private_key(private_key: PrivateKeyLike) -> str:
    """The checksummed address of a private key."""
    return _address_from_public_key(_parse_private_key(private_key).public_key)


# --- signing -------------------------------------------------------------------------------------


def _signature_dict(signature: bytes) -> dict[str, Any]:
    # r and s as the SDK prints them: hex of the integer, leading zeros stripped.
    return {
        "r": hex(int.from_bytes(signature[:32], "big")),
        "s": hex(int.from_bytes(signature[32:64], "big")),
        "v": 27 + signature[64],
    }


class L1Signer:
    """Signs L1 actions with one private key, parsed once.

    ``repr`` shows the address only; the key is never printed.
    """

    __slots__ = ("_address", "_key")

    def __init__(self, private_key: PrivateKeyLike) -> None:
        self._key = _parse_private_key(private_key)
        self._address = _address_from_public_key(self._key.public_key)

    @property
    def address(self) -> str:
        """The signer's checksummed address."""
        return self._address

    def sign_digest(self, digest: bytes) -> dict[str, Any]:
        """Sign a ready 32-byte digest; ``{"r", "s", "v"}`` as the venue expects."""
        return _signature_dict(self._key.sign_recoverable(digest, hasher=None))

    def sign(
        self,
        action: Mapping[str, Any],
        nonce: int,
        *,
        vault_address: str | None = None,
        expires_after: int | None = None,
        mainnet: bool = True,
    ) -> dict[str, Any]:
        """Sign an L1 action; same ``{"r", "s", "v"}`` as the SDK's ``sign_l1_action``."""
        digest = _l1_digest(action, nonce, vault_address, expires_after, mainnet)
        return _signature_dict(self._key.sign_recoverable(digest, hasher=None))

    def __repr__(self) -> str:
        return f"L1Signer(address={self._address})"


@functools.lru_cache(maxsize=16)
def _cached_signer(private_key: PrivateKeyLike) -> L1Signer:
    return L1Signer(private_key)


def sign_l1_action(
    private_key: PrivateKeyLike,
    action: Mapping[str, Any],
    nonce: int,
    *,
    vault_address: str | None = None,
    expires_after: int | None = None,
    mainnet: bool = True,
) -> dict[str, Any]:
    """Sign an L1 action with a private key (parsed keys are cached); see :class:`L1Signer`."""
    return _cached_signer(private_key).sign(
        action, nonce, vault_address=vault_address, expires_after=expires_after, mainnet=mainnet
    )


# --- recovery ------------------------------------------------------------------------------------


def _signature_scalar(signature: Mapping[str, Any], name: str) -> int:
    value = signature.get(name)
    if not isinstance(value, str) or _HEX_QUANTITY.fullmatch(value) is None:
        raise SignatureError(f"signature {name} must be a 0x hex string of at most 32 bytes")
    scalar = int(value, 16)
    if not 0 < scalar < SECP256K1_N:
        raise SignatureError(f"signature {name} out of range")
    return scalar


def _recoverable_signature(signature: Mapping[str, Any]) -> bytes:
    """The 65-byte ``r || s || recid`` form of a ``{"r", "s", "v"}`` signature."""
    if not isinstance(signature, Mapping):
        raise SignatureError("signature must be an object with r, s and v")
    r = _signature_scalar(signature, "r")
    s = _signature_scalar(signature, "s")
    v = signature.get("v")
    if type(v) is not int or v not in (27, 28):
        shown = v if type(v) is int else type(v).__name__  # never the repr of any value
        raise SignatureError(f"signature v must be 27 or 28, got {shown}")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,))


def recover_l1_signer(
    action: Mapping[str, Any],
    nonce: int,
    signature: Mapping[str, Any],
    *,
    vault_address: str | None = None,
    expires_after: int | None = None,
    mainnet: bool = True,
) -> str:
    """The checksummed address that signed an L1 action.

    A well-formed signature over other data recovers to some other address: callers compare
    the result with the address they expect. Raises :class:`SignatureError` if the signature
    is malformed or no key can be recovered from it, and ``ValueError`` for a bad nonce,
    vault address or expiry.
    """
    raw = _recoverable_signature(signature)
    digest = _l1_digest(action, nonce, vault_address, expires_after, mainnet)
    try:
        public_key = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except ValueError as exc:
        raise SignatureError(f"no public key recoverable from signature: {exc}") from None
    return _address_from_public_key(public_key)


# --- user-signed actions -------------------------------------------------------------------------

SIGNATURE_CHAIN_ID: Final = "0x66eee"  # what the SDK signs on: any chain id is accepted
_USER_DOMAIN_NAME: Final = _keccak256(b"HyperliquidSignTransaction")
_VERSION_1: Final = _keccak256(b"1")
_UINT64_LIMIT: Final = _U64_LIMIT
_FIELD_TYPES: Final = frozenset({"string", "address", "bool", "uint64", "uint256", "bytes32"})


@functools.lru_cache(maxsize=64)
def _typehash(primary_type: str, fields: tuple[tuple[str, str], ...]) -> bytes:
    inner = ",".join(f"{kind} {name}" for name, kind in fields)
    return _keccak256(f"{primary_type}({inner})".encode())


@attrs.frozen
class UserSignedType:
    """A user-signed action's EIP-712 type: its primary type name and its fields in order, as
    ``(name, type)`` pairs (the SDK's ``*_SIGN_TYPES``)."""

    primary_type: str
    fields: tuple[tuple[str, str], ...]

    def __attrs_post_init__(self) -> None:
        unknown = [kind for _, kind in self.fields if kind not in _FIELD_TYPES]
        if unknown:
            raise ValueError(f"EIP-712 field types not supported here: {unknown}")

    @property
    def typehash(self) -> bytes:
        return _typehash(self.primary_type, self.fields)


APPROVE_AGENT: Final = UserSignedType(
    "HyperliquidTransaction:ApproveAgent",
    (
        ("hyperliquidChain", "string"),
        ("agentAddress", "address"),
        ("agentName", "string"),
        ("nonce", "uint64"),
    ),
)


def _encode_field(kind: str, name: str, value: Any) -> bytes:
    """One field's 32-byte EIP-712 encoding; ``ValueError`` naming the field when its value
    does not fit its type."""
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
        return _keccak256(value.encode())
    if kind == "address":
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected an address")
        return bytes(12) + _address_bytes(value)
    if kind == "bool":
        if type(value) is not bool:
            raise ValueError(f"{name}: expected a boolean")
        return int(value).to_bytes(32, "big")
    if kind in ("uint64", "uint256"):
        limit = _UINT64_LIMIT if kind == "uint64" else 1 << 256
        if type(value) is not int or not 0 <= value < limit:
            raise ValueError(f"{name}: expected an unsigned integer ({kind})")
        return value.to_bytes(32, "big")
    # bytes32
    raw = value if isinstance(value, bytes) else None
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{64}", value):
        raw = bytes.fromhex(value[2:])
    if raw is None or len(raw) != 32:
        raise ValueError(f"{name}: expected 32 bytes")
    return raw


def _chain_name(mainnet: bool) -> str:
    return "Mainnet" if mainnet else "Testnet"


def user_signed_digest(action: Mapping[str, Any], kind: UserSignedType) -> bytes:
    """The 32-byte EIP-712 digest of a user-signed action as it stands (``signatureChainId`` and
    ``hyperliquidChain`` included). ``ValueError`` when a field is missing or of the wrong
    type, or the chain id is not a hex quantity."""
    chain = action.get("signatureChainId")
    if not isinstance(chain, str) or _HEX_QUANTITY.fullmatch(chain) is None:
        raise ValueError("signatureChainId: expected a 0x hex chain id")
    domain = _keccak256(
        _DOMAIN_TYPEHASH
        + _USER_DOMAIN_NAME
        + _VERSION_1
        + int(chain, 16).to_bytes(32, "big")
        + bytes(32)
    )
    encoded = []
    for name, field_kind in kind.fields:
        if name not in action:
            raise ValueError(f"{name}: missing")
        encoded.append(_encode_field(field_kind, name, action[name]))
    struct = _keccak256(kind.typehash + b"".join(encoded))
    return _keccak256(b"\x19\x01" + domain + struct)


def sign_user_action(
    private_key: PrivateKeyLike,
    action: Mapping[str, Any],
    kind: UserSignedType,
    *,
    mainnet: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign a user-signed action as the SDK's ``sign_user_signed_action`` does: returns the
    action as it is sent (a copy with ``signatureChainId`` and ``hyperliquidChain`` set, in the
    SDK's key order) and its ``{"r", "s", "v"}`` signature."""
    sent = dict(action)
    sent["signatureChainId"] = SIGNATURE_CHAIN_ID
    sent["hyperliquidChain"] = _chain_name(mainnet)
    signature = _cached_signer(private_key).sign_digest(user_signed_digest(sent, kind))
    return sent, signature


def recover_user_signer(
    action: Mapping[str, Any],
    signature: Mapping[str, Any],
    kind: UserSignedType,
    *,
    mainnet: bool,
) -> str:
    """The checksummed address that signed a user-signed action, verified as the venue of one
    network does: its own ``hyperliquidChain`` is hashed whatever the action says, so a
    signature for the other network recovers to some other address. Raises
    :class:`SignatureError` for a malformed or unusable signature, ``ValueError`` for an
    action whose fields do not fit ``kind``."""
    raw = _recoverable_signature(signature)
    digest = user_signed_digest({**action, "hyperliquidChain": _chain_name(mainnet)}, kind)
    try:
        public_key = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    except ValueError as exc:
        raise SignatureError(f"no public key recoverable from signature: {exc}") from None
    return _address_from_public_key(public_key)
