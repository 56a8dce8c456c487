"""Tests for mm.secrets: Secret never shows its value, Redactor replaces every secret."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.config import Secrets
from mm.secrets import REDACTED, Redactor, Secret

VALUE = "hunter2-very-secret-token"


@attrs.frozen
class Holder:
    name: str
    secret: Secret


def test_reveal_returns_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


def test_repr_and_str_hide_the_value() -> None:
    secret = Secret(VALUE)
    assert repr(secret) == f"Secret({REDACTED})"
    assert str(secret) == f"Secret({REDACTED})"
    assert VALUE not in f"{secret} {secret!r} {secret!s}"
    assert VALUE not in "%s %r" % (secret, secret)  # noqa: UP031


@pytest.mark.parametrize(
    "container",
    [
        [Secret(VALUE)],
        (Secret(VALUE), 1),
        {"token": Secret(VALUE)},
        {Secret(VALUE)},
        Holder("x", Secret(VALUE)),
        Secrets(admin_token=Secret(VALUE)),
        [{"nested": [Holder("y", Secret(VALUE))]}],
    ],
)
def test_containers_never_show_the_value(container: object) -> None:
    assert VALUE not in repr(container)
    assert VALUE not in str(container)
    assert REDACTED in repr(container)


def test_secrets_compare_by_value() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert hash(Secret(VALUE)) == hash(Secret(VALUE))


def test_redactor_replaces_every_occurrence_of_every_secret() -> None:
    redact = Redactor([Secret("alpha-secret"), Secret("beta-secret")])
    text = "a=alpha-secret b=beta-secret again alpha-secret"
    assert redact(text) == "a=*** b=*** again ***"


def test_redactor_replaces_the_longest_secret_first() -> None:
    short, long = "abc123", "xxabc123yy"
    for order in ([Secret(short), Secret(long)], [Secret(long), Secret(short)]):
        redact = Redactor(order)
        assert redact(f"{long} and {short}") == "*** and ***"


def test_redactor_leaves_text_without_secrets_unchanged() -> None:
    redact = Redactor([Secret("alpha-secret")])
    text = "nothing to see here: alpha-secre t"
    assert redact(text) == text


def test_empty_secrets_are_ignored() -> None:
    redact = Redactor([Secret(""), Secret("")])
    assert not redact
    assert redact("some text") == "some text"
    mixed = Redactor([Secret(""), Secret("tok-tok-tok")])
    assert mixed
    assert mixed("a tok-tok-tok b") == "a *** b"


def test_empty_redactor_is_falsy_and_identity() -> None:
    redact = Redactor()
    assert not redact
    assert redact("anything ***") == "anything ***"
    assert Redactor([Secret("x")])


NO_STARS = st.text(alphabet=st.characters(blacklist_characters="*"), min_size=1, max_size=10)


@given(secrets=st.lists(NO_STARS, min_size=1, max_size=4), text=st.text(max_size=60))
def test_redacted_text_contains_no_secret(secrets: list[str], text: str) -> None:
    # Secrets are spliced into the text so that they occur, possibly overlapping each other.
    spliced = text
    for index, value in enumerate(secrets):
        cut = (index * 7) % (len(spliced) + 1)
        spliced = spliced[:cut] + value + spliced[cut:]
    redacted = Redactor([Secret(value) for value in secrets])(spliced)
    for value in secrets:
        assert value not in redacted


@given(secrets=st.lists(NO_STARS, min_size=1, max_size=4), text=st.text(max_size=60))
def test_text_without_secrets_is_unchanged(secrets: list[str], text: str) -> None:
    if any(value in text for value in secrets):
        return
    assert Redactor([Secret(value) for value in secrets])(text) == text
