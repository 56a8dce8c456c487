"""Nonce rules per signer, as the venue keeps them.

The venue stores the 100 highest nonces of each signer. A new nonce must not have been used,
must be larger than the smallest stored one once 100 are stored, and must lie within
(now - 2 days, now + 1 day) in milliseconds.
"""

from __future__ import annotations

import bisect

KEPT = 100
PAST_WINDOW_MS = 2 * 86_400_000
FUTURE_WINDOW_MS = 86_400_000


class NonceBook:
    def __init__(self) -> None:
        self._by_signer: dict[str, list[int]] = {}

    def check_and_use(self, signer: str, nonce: int, now_ms: int) -> str | None:
        """Record the nonce; an error text (and nothing recorded) when it is refused."""
        if not now_ms - PAST_WINDOW_MS < nonce < now_ms + FUTURE_WINDOW_MS:
            return f"Invalid nonce: nonce {nonce} is outside the allowed time window."
        kept = self._by_signer.setdefault(signer, [])
        index = bisect.bisect_left(kept, nonce)
        if index < len(kept) and kept[index] == nonce:
            return f"Invalid nonce: duplicate nonce {nonce}."
        if len(kept) >= KEPT:
            if nonce < kept[0]:
                return f"Invalid nonce: nonce {nonce} is lower than the signer's stored nonces."
            kept.pop(0)
            index -= 1
        kept.insert(max(index, 0), nonce)
        return None
