"""Tests for mm.venues.hyperliquid.signing: published vectors, and the official SDK as an oracle."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.utils import signing as sdk
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.secrets import Secret
from mm.venues.hyperliquid.signing import (
    APPROVE_AGENT,
    DOMAIN_SEPARATOR,
    SECP256K1_N,
    L1Signer,
    SignatureError,
    UserSignedType,
    action_hash,
    address_from_private_key,
    agent_struct_hash,
    checksum_address,
    eip712_digest,
    pack_action,
    recover_l1_signer,
    recover_user_signer,
    sign_l1_action,
    sign_user_action,
    user_signed_digest,
)
from mm.venues.hyperliquid.wire import approve_agent_request
from tests.cyclic import no_cyclic_garbage
from tests.fixture_paths import HYPERLIQUID as FIXTURES

VECTORS_PATH = FIXTURES / "signing_vectors.json"
VECTORS_FILE: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
VECTORS: list[dict[str, Any]] = VECTORS_FILE["vectors"]
NETWORKS = [
    pytest.param("mainnet", True, id="mainnet"),
    pytest.param("testnet", False, id="testnet"),
]
SECP256K1_P = 2**256 - 2**32 - 977

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
KEY_ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"
ORDER: dict[str, Any] = {
    "type": "order",
    "orders": [
        {
            "a": 4,
            "b": True,
            "p": "3120.5",
            "s": "0.25",
            "r": False,
            "t": {"limit": {"tif": "Alo"}},
            "c": "0x0000000000000000000000000000abcd",
        }
    ],
    "grouping": "na",
}
NONCE = 1_717_171_717_171


def by_name(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def parse_hex(value: str) -> bytes:
    assert value.startswith("0x")
    return bytes.fromhex(value[2:])


# --- published vectors ---------------------------------------------------------------------------


def test_vectors_are_loaded() -> None:
    assert len(VECTORS) >= 10
    assert {vector["private_key"] for vector in VECTORS} >= {KEY}


def test_domain_separator_matches_vectors() -> None:
    assert "0x" + DOMAIN_SEPARATOR.hex() == VECTORS_FILE["_meta"]["domain_separator"]


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_msgpack_matches_vector(vector: dict[str, Any]) -> None:
    assert pack_action(vector["action"]).hex() == vector["msgpack_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_action_hash_matches_vector(vector: dict[str, Any]) -> None:
    connection_id = action_hash(
        vector["action"], vector["vault_address"], vector["nonce"], vector["expires_after"]
    )
    assert connection_id == parse_hex(vector["connection_id"])


@pytest.mark.parametrize(("network", "mainnet"), NETWORKS)
@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_eip712_digest_matches_vector(vector: dict[str, Any], network: str, mainnet: bool) -> None:
    expected = vector[network]
    connection_id = parse_hex(vector["connection_id"])
    assert agent_struct_hash(connection_id, mainnet) == parse_hex(expected["agent_struct_hash"])
    assert eip712_digest(connection_id, mainnet) == parse_hex(expected["eip712_digest"])


@pytest.mark.parametrize(("network", "mainnet"), NETWORKS)
@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_signature_matches_vector(vector: dict[str, Any], network: str, mainnet: bool) -> None:
    expected = vector[network]
    signature = sign_l1_action(
        vector["private_key"],
        vector["action"],
        vector["nonce"],
        vault_address=vector["vault_address"],
        expires_after=vector["expires_after"],
        mainnet=mainnet,
    )
    assert set(signature) == {"r", "s", "v"}
    assert int(signature["r"], 16) == int(expected["r_padded"], 16)
    assert int(signature["s"], 16) == int(expected["s_padded"], 16)
    # Exactly the SDK's strings: hex of the integer, leading zeros stripped.
    assert signature["r"] == expected["r"]
    assert signature["s"] == expected["s"]
    assert signature["v"] == expected["v"]
    assert type(signature["v"]) is int


@pytest.mark.parametrize(("network", "mainnet"), NETWORKS)
@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_recover_returns_vector_address(
    vector: dict[str, Any], network: str, mainnet: bool
) -> None:
    expected = vector[network]
    signature = {"r": expected["r"], "s": expected["s"], "v": expected["v"]}
    address = recover_l1_signer(
        vector["action"],
        vector["nonce"],
        signature,
        vault_address=vector["vault_address"],
        expires_after=vector["expires_after"],
        mainnet=mainnet,
    )
    assert address.lower() == vector["address"].lower()
    assert address == checksum_address(vector["address"])
    # Zero-padded r and s are the same signature.
    padded = {"r": expected["r_padded"], "s": expected["s_padded"], "v": expected["v"]}
    from_padded = recover_l1_signer(
        vector["action"],
        vector["nonce"],
        padded,
        vault_address=vector["vault_address"],
        expires_after=vector["expires_after"],
        mainnet=mainnet,
    )
    assert from_padded == address


@pytest.mark.parametrize("vector", VECTORS, ids=by_name)
def test_address_from_private_key_matches_vector(vector: dict[str, Any]) -> None:
    address = address_from_private_key(vector["private_key"])
    assert address == vector["address"]
    assert L1Signer(vector["private_key"]).address == vector["address"]


# --- the official SDK as an oracle ---------------------------------------------------------------

private_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: "0x" + k.to_bytes(32, "big").hex())
decimals = st.from_regex(r"(0|[1-9][0-9]{0,6})(\.[0-9]{1,6})?", fullmatch=True)
cloids = st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())
addresses = st.binary(min_size=20, max_size=20).flatmap(
    lambda b: st.sampled_from(["0x" + b.hex(), checksum_address(b.hex())])
)
u64 = st.integers(0, 2**64 - 1)
nonces = st.one_of(st.integers(1_600_000_000_000, 2_000_000_000_000), u64)
order_types = st.one_of(
    st.sampled_from(["Alo", "Ioc", "Gtc"]).map(lambda tif: {"limit": {"tif": tif}}),
    st.fixed_dictionaries(
        {"isMarket": st.booleans(), "triggerPx": decimals, "tpsl": st.sampled_from(["tp", "sl"])}
    ).map(lambda trigger: {"trigger": trigger}),
)


@st.composite
def order_wires(draw: st.DrawFn) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": draw(st.integers(0, 20_000)),
        "b": draw(st.booleans()),
        "p": draw(decimals),
        "s": draw(decimals),
        "r": draw(st.booleans()),
        "t": draw(order_types),
    }
    cloid = draw(st.none() | cloids)
    if cloid is not None:
        wire["c"] = cloid
    return wire


order_actions = st.builds(
    lambda orders, grouping: {"type": "order", "orders": orders, "grouping": grouping},
    st.lists(order_wires(), min_size=1, max_size=4),
    st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_actions = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.text(min_size=1, max_size=20),
    st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "type"), json_values),
)


@settings(max_examples=30, deadline=None)
@given(
    key=private_keys,
    action=order_actions,
    nonce=nonces,
    vault=st.none() | addresses,
    expires_after=st.none() | u64,
    mainnet=st.booleans(),
)
def test_signature_equals_sdk(
    key: str,
    action: dict[str, Any],
    nonce: int,
    vault: str | None,
    expires_after: int | None,
    mainnet: bool,
) -> None:
    wallet = Account.from_key(key)
    expected = sdk.sign_l1_action(wallet, action, vault, nonce, expires_after, mainnet)
    signer = L1Signer(key)
    ours = signer.sign(
        action, nonce, vault_address=vault, expires_after=expires_after, mainnet=mainnet
    )
    assert ours == expected
    assert signer.address == wallet.address
    recovered = recover_l1_signer(
        action, nonce, ours, vault_address=vault, expires_after=expires_after, mainnet=mainnet
    )
    assert recovered == wallet.address


@settings(max_examples=100, deadline=None)
@given(action=json_actions, nonce=u64, vault=st.none() | addresses, expires_after=st.none() | u64)
def test_action_hash_equals_sdk_for_any_json_action(
    action: dict[str, Any], nonce: int, vault: str | None, expires_after: int | None
) -> None:
    expected = sdk.action_hash(action, vault, nonce, expires_after)
    assert action_hash(action, vault, nonce, expires_after) == expected
    # A read-only mapping packs like the dict it wraps.
    frozen = MappingProxyType(action)
    assert action_hash(frozen, vault, nonce, expires_after) == expected


# --- tampering and malformed signatures ----------------------------------------------------------


def signed_order(**kwargs: Any) -> dict[str, Any]:
    return sign_l1_action(KEY, ORDER, NONCE, **kwargs)


def test_recover_round_trip() -> None:
    assert recover_l1_signer(ORDER, NONCE, signed_order()) == KEY_ADDRESS
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    signature = signed_order(vault_address=vault, expires_after=NONCE + 5_000, mainnet=False)
    recovered = recover_l1_signer(
        ORDER, NONCE, signature, vault_address=vault, expires_after=NONCE + 5_000, mainnet=False
    )
    assert recovered == KEY_ADDRESS


def test_signing_makes_no_cyclic_garbage() -> None:
    """Each keccak digest once made a ctypes array type (a cycle) for the collector to free."""
    signer = L1Signer(KEY)
    with no_cyclic_garbage():
        for nonce in range(NONCE, NONCE + 5):
            signer.sign(ORDER, nonce)


def test_altered_payload_recovers_another_address() -> None:
    signature = signed_order()
    altered = json.loads(json.dumps(ORDER))
    altered["orders"][0]["p"] = "3120.6"
    assert recover_l1_signer(altered, NONCE, signature) != KEY_ADDRESS
    reordered = {"orders": ORDER["orders"], "type": "order", "grouping": "na"}
    assert recover_l1_signer(reordered, NONCE, signature) != KEY_ADDRESS


@pytest.mark.parametrize(
    "context",
    [
        {"nonce": NONCE + 1},
        {"mainnet": False},
        {"vault_address": "0x1719884eb866cb12b2287399b15f7db5e7d775ea"},
        {"expires_after": NONCE + 5_000},
    ],
    ids=["nonce", "network", "vault", "expires_after"],
)
def test_other_context_recovers_another_address(context: dict[str, Any]) -> None:
    signature = signed_order()
    nonce = context.pop("nonce", NONCE)
    assert recover_l1_signer(ORDER, nonce, signature, **context) != KEY_ADDRESS


def test_testnet_signature_recovers_only_on_testnet() -> None:
    signature = signed_order(mainnet=False)
    assert recover_l1_signer(ORDER, NONCE, signature, mainnet=False) == KEY_ADDRESS
    assert recover_l1_signer(ORDER, NONCE, signature, mainnet=True) != KEY_ADDRESS


def test_high_s_form_recovers_like_the_sdk() -> None:
    signature = signed_order()
    flipped = {
        "r": signature["r"],
        "s": hex(SECP256K1_N - int(signature["s"], 16)),
        "v": 55 - signature["v"],
    }
    assert recover_l1_signer(ORDER, NONCE, flipped) == KEY_ADDRESS


def _not_on_curve_x() -> int:
    """The smallest x for which no curve point exists: an r that recovers no key."""
    x = 1
    while pow(x**3 + 7, (SECP256K1_P - 1) // 2, SECP256K1_P) != SECP256K1_P - 1:
        x += 1
    return x


GOOD_R = "0x" + "12" * 32
GOOD_S = "0x" + "34" * 32


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": 29}, id="v-29"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": 26}, id="v-26"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": 0}, id="v-0"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": 37}, id="v-eip155"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": "27"}, id="v-string"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": True}, id="v-bool"),
        pytest.param({"r": GOOD_R, "s": GOOD_S, "v": 27.0}, id="v-float"),
        pytest.param({"r": GOOD_R, "s": GOOD_S}, id="v-missing"),
        pytest.param({"s": GOOD_S, "v": 27}, id="r-missing"),
        pytest.param({"r": "0xzz" + "12" * 31, "s": GOOD_S, "v": 27}, id="r-not-hex"),
        pytest.param({"r": "12" * 32, "s": GOOD_S, "v": 27}, id="r-no-0x"),
        pytest.param({"r": "0x", "s": GOOD_S, "v": 27}, id="r-empty"),
        pytest.param({"r": " 0x12", "s": GOOD_S, "v": 27}, id="r-space"),
        pytest.param({"r": "0x1_2", "s": GOOD_S, "v": 27}, id="r-underscore"),
        pytest.param({"r": "0x1" + "12" * 32, "s": GOOD_S, "v": 27}, id="r-too-long"),
        pytest.param({"r": int(GOOD_R, 16), "s": GOOD_S, "v": 27}, id="r-int"),
        pytest.param({"r": "0x0", "s": GOOD_S, "v": 27}, id="r-zero"),
        pytest.param({"r": hex(SECP256K1_N), "s": GOOD_S, "v": 27}, id="r-n"),
        pytest.param({"r": GOOD_R, "s": "0x" + "f" * 64, "v": 27}, id="s-above-n"),
        pytest.param({"r": GOOD_R, "s": "0x00", "v": 27}, id="s-zero"),
        pytest.param({"r": GOOD_R, "s": None, "v": 27}, id="s-none"),
        pytest.param({"r": hex(_not_on_curve_x()), "s": GOOD_S, "v": 27}, id="r-not-on-curve"),
    ],
)
def test_malformed_signature_raises(signature: dict[str, Any]) -> None:
    with pytest.raises(SignatureError):
        recover_l1_signer(ORDER, NONCE, signature)


def test_signature_that_is_not_a_mapping_raises() -> None:
    bad: Any = ["0x12", "0x34", 27]
    with pytest.raises(SignatureError):
        recover_l1_signer(ORDER, NONCE, bad)


def test_signature_error_is_a_value_error() -> None:
    assert issubclass(SignatureError, ValueError)


# --- inputs, keys and addresses ------------------------------------------------------------------


@pytest.mark.parametrize("nonce", [-1, 2**64])
def test_nonce_outside_u64_is_rejected(nonce: int) -> None:
    with pytest.raises(ValueError, match="nonce"):
        action_hash(ORDER, None, nonce, None)


@pytest.mark.parametrize("expires_after", [-1, 2**64])
def test_expires_after_outside_u64_is_rejected(expires_after: int) -> None:
    with pytest.raises(ValueError, match="expires_after"):
        action_hash(ORDER, None, NONCE, expires_after)


@pytest.mark.parametrize("vault", ["0x1234", "0x" + "zz" * 20, "0x" + "11" * 21, ""])
def test_malformed_vault_address_is_rejected(vault: str) -> None:
    with pytest.raises(ValueError, match="address"):
        action_hash(ORDER, vault, NONCE, None)


def test_vault_address_case_and_prefix_do_not_matter() -> None:
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    expected = action_hash(ORDER, vault, NONCE, None)
    assert action_hash(ORDER, checksum_address(vault), NONCE, None) == expected
    assert action_hash(ORDER, vault[2:].upper(), NONCE, None) == expected


def test_connection_id_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        eip712_digest(bytes(31), True)


def test_key_forms_agree() -> None:
    raw = bytes.fromhex(KEY[2:])
    expected = signed_order()
    for key in (KEY, KEY[2:], KEY.upper().replace("0X", "0x"), raw, Secret(KEY)):
        assert sign_l1_action(key, ORDER, NONCE) == expected
        assert address_from_private_key(key) == KEY_ADDRESS


@pytest.mark.parametrize(
    "key",
    [
        "0x1234",
        "0x" + "zz" * 32,
        "0x" + "00" * 32,
        hex(SECP256K1_N),
        bytes(31),
        bytes(32),
        b"\xff" * 32,
    ],
)
def test_invalid_private_key_is_rejected_without_echo(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="private key") as excinfo:
        L1Signer(key)
    if isinstance(key, str) and len(key) > 6:
        assert key not in str(excinfo.value)


def test_signer_repr_hides_the_key() -> None:
    signer = L1Signer(KEY)
    assert KEY_ADDRESS in repr(signer)
    assert KEY[2:] not in repr(signer)
    assert KEY[2:] not in str(signer)


def test_sign_digest_matches_sign() -> None:
    signer = L1Signer(KEY)
    digest = eip712_digest(action_hash(ORDER, None, NONCE, None), True)
    assert signer.sign_digest(digest) == signer.sign(ORDER, NONCE)


@pytest.mark.parametrize(
    "address",
    [
        # EIP-55's own examples.
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_checksum_address_eip55(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert checksum_address(address.upper().replace("0X", "0x")) == address
    assert checksum_address(address[2:]) == address


@pytest.mark.parametrize("address", ["0x1234", "0x" + "gg" * 20, "0x" + "11" * 21, "11" * 19])
def test_checksum_address_rejects_malformed(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        checksum_address(address)


# --- user-signed actions: the SDK as the oracle ------------------------------------------------

agent_names = st.none() | st.text(max_size=50)


@settings(max_examples=40, deadline=None)
@given(
    key=private_keys,
    agent=addresses,
    name=agent_names,
    nonce=st.integers(0, 2**64 - 1),
    mainnet=st.booleans(),
)
def test_approve_agent_request_equals_sdk(
    key: str, agent: str, name: str | None, nonce: int, mainnet: bool
) -> None:
    wallet = Account.from_key(key)
    sdk_action: dict[str, Any] = {
        "type": "approveAgent",
        "agentAddress": agent,
        "agentName": name or "",
        "nonce": nonce,
    }
    expected = sdk.sign_agent(wallet, sdk_action, mainnet)  # sets the chain fields in place
    if name is None:
        del sdk_action["agentName"]

    body = approve_agent_request(key, agent, nonce=nonce, mainnet=mainnet, name=name)

    assert body["signature"] == expected
    assert body["action"] == sdk_action
    assert list(body["action"]) == list(sdk_action)  # the same key order
    assert body["nonce"] == nonce
    assert body["vaultAddress"] is None
    signed = {"agentName": "", **body["action"]}  # the venue reads a missing name as ""
    assert recover_user_signer(signed, expected, APPROVE_AGENT, mainnet=mainnet) == wallet.address
    # The other network's venue recovers someone else: the chain name is in the digest.
    other = recover_user_signer(signed, expected, APPROVE_AGENT, mainnet=not mainnet)
    assert other != wallet.address


SDK_USER_TYPES = [
    ("HyperliquidTransaction:UsdSend", sdk.USD_SEND_SIGN_TYPES),
    ("HyperliquidTransaction:Withdraw", sdk.WITHDRAW_SIGN_TYPES),
    ("HyperliquidTransaction:UsdClassTransfer", sdk.USD_CLASS_TRANSFER_SIGN_TYPES),
    ("HyperliquidTransaction:TokenDelegate", sdk.TOKEN_DELEGATE_TYPES),
    ("HyperliquidTransaction:UserDexAbstraction", sdk.USER_DEX_ABSTRACTION_SIGN_TYPES),
]


def _field_values(kind: str) -> st.SearchStrategy[Any]:
    return {
        "string": st.text(max_size=30),
        "address": addresses,
        "bool": st.booleans(),
        "uint64": u64,
    }[kind]


@st.composite
def user_actions(draw: st.DrawFn) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
    primary, types = draw(st.sampled_from(SDK_USER_TYPES))
    action = {
        field["name"]: draw(_field_values(field["type"]))
        for field in types
        if field["name"] != "hyperliquidChain"
    }
    return primary, types, action


@settings(max_examples=60, deadline=None)
@given(key=private_keys, case=user_actions(), mainnet=st.booleans())
def test_user_signed_action_equals_sdk_for_its_types(
    key: str, case: tuple[str, list[dict[str, str]], dict[str, Any]], mainnet: bool
) -> None:
    primary, types, action = case
    kind = UserSignedType(primary, tuple((field["name"], field["type"]) for field in types))
    sdk_action = dict(action)
    expected = sdk.sign_user_signed_action(
        Account.from_key(key), sdk_action, types, primary, mainnet
    )

    sent, ours = sign_user_action(key, action, kind, mainnet=mainnet)

    assert ours == expected
    assert sent == sdk_action
    assert recover_user_signer(sent, ours, kind, mainnet=mainnet) == Account.from_key(key).address


def test_user_signed_digest_refuses_a_missing_or_mistyped_field() -> None:
    action = {
        "type": "approveAgent",
        "agentAddress": "0x" + "11" * 20,
        "agentName": "",
        "nonce": NONCE,
        "signatureChainId": "0x66eee",
        "hyperliquidChain": "Testnet",
    }
    user_signed_digest(action, APPROVE_AGENT)
    with pytest.raises(ValueError, match="nonce: missing"):
        user_signed_digest({k: v for k, v in action.items() if k != "nonce"}, APPROVE_AGENT)
    with pytest.raises(ValueError, match="agentAddress"):
        user_signed_digest({**action, "agentAddress": 5}, APPROVE_AGENT)
    with pytest.raises(ValueError, match="nonce"):
        user_signed_digest({**action, "nonce": -1}, APPROVE_AGENT)
    with pytest.raises(ValueError, match="signatureChainId"):
        user_signed_digest({**action, "signatureChainId": "66eee"}, APPROVE_AGENT)


def test_a_user_signed_type_names_only_types_it_encodes() -> None:
    with pytest.raises(ValueError, match="not supported"):
        UserSignedType("X", (("a", "int8"),))
