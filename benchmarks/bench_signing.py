"""Benchmark: Hyperliquid L1-action signing and recovery, ours against the official SDK.

Run with ``python benchmarks/bench_signing.py [--n N] [--repeat R] [--quick]`` (needs the
``test`` extra, which brings ``hyperliquid-python-sdk``; ``--quick``: 20 of each, once). It
signs a realistic two-order action (ALO quotes with client order ids) under a fresh nonce each
time, checks that both implementations give identical signatures, and prints the median rate of
each and the speedup.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from eth_account import Account
from hyperliquid.utils import signing as sdk

from mm.venues.hyperliquid.signing import L1Signer, recover_l1_signer

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
BASE_NONCE = 1_717_171_717_171
ACTION: dict[str, Any] = {
    "type": "order",
    "orders": [
        {
            "a": 4,
            "b": True,
            "p": "3120.5",
            "s": "0.2507",
            "r": False,
            "t": {"limit": {"tif": "Alo"}},
            "c": "0x00000000000000000000018f2a4b1c01",
        },
        {
            "a": 4,
            "b": False,
            "p": "3121.7",
            "s": "0.2507",
            "r": False,
            "t": {"limit": {"tif": "Alo"}},
            "c": "0x00000000000000000000018f2a4b1c02",
        },
    ],
    "grouping": "na",
}


def median_seconds(run: Callable[[int], object], n: int, repeat: int) -> float:
    """Median wall time of ``repeat`` runs of ``run(n)``, after one warm-up run."""
    run(max(1, n // 10))
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(n)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(label: str, seconds: float, n: int) -> float:
    rate = n / seconds
    print(f"  {label:<36} {rate:>10,.0f} /s   {seconds / n * 1e6:>8.1f} us each")
    return rate


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median is shown)")
    parser.add_argument("--check", type=int, default=200, help="signatures cross-checked")
    parser.add_argument("--quick", action="store_true", help="20 of each, once")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeat, args.check = 20, 1, 20
    n: int = args.n
    repeat: int = args.repeat

    signer = L1Signer(KEY)
    wallet = Account.from_key(KEY)
    assert signer.address == wallet.address

    # Same signatures, both networks, with and without a vault and an expiry.
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    for i in range(args.check):
        nonce = BASE_NONCE + i
        mainnet = i % 2 == 0
        vault_address = vault if i % 3 == 0 else None
        expires_after = nonce + 60_000 if i % 5 == 0 else None
        ours = signer.sign(
            ACTION, nonce, vault_address=vault_address, expires_after=expires_after, mainnet=mainnet
        )
        theirs = sdk.sign_l1_action(wallet, ACTION, vault_address, nonce, expires_after, mainnet)
        if ours != theirs:
            raise SystemExit(f"signature mismatch at nonce {nonce}: {ours} != {theirs}")
        recovered = recover_l1_signer(
            ACTION,
            nonce,
            ours,
            vault_address=vault_address,
            expires_after=expires_after,
            mainnet=mainnet,
        )
        if recovered != wallet.address:
            raise SystemExit(f"recovered {recovered}, expected {wallet.address}")
    print(f"{args.check} signatures identical to the SDK's; signer {signer.address}")

    def ours_sign(count: int) -> None:
        sign = signer.sign
        for i in range(count):
            sign(ACTION, BASE_NONCE + i)

    def sdk_sign(count: int) -> None:
        for i in range(count):
            sdk.sign_l1_action(wallet, ACTION, None, BASE_NONCE + i, None, True)

    signatures = [signer.sign(ACTION, BASE_NONCE + i) for i in range(n)]

    def ours_recover(count: int) -> None:
        for i in range(count):
            recover_l1_signer(ACTION, BASE_NONCE + i, signatures[i % n])

    def sdk_recover(count: int) -> None:
        for i in range(count):
            sdk.recover_agent_or_user_from_l1_action(
                ACTION, signatures[i % n], None, BASE_NONCE + i, None, True
            )

    print(f"\nsign, two-order action, {n} per run, median of {repeat}:")
    ours_rate = report("mm L1Signer.sign", median_seconds(ours_sign, n, repeat), n)
    sdk_rate = report("baseline: the SDK's sign_l1_action", median_seconds(sdk_sign, n, repeat), n)
    print(f"  speedup: {ours_rate / sdk_rate:.1f}x")

    print(f"\nrecover, same action, {n} per run, median of {repeat}:")
    ours_rate = report("mm recover_l1_signer", median_seconds(ours_recover, n, repeat), n)
    sdk_rate = report("baseline: the SDK's recover", median_seconds(sdk_recover, n, repeat), n)
    print(f"  speedup: {ours_rate / sdk_rate:.1f}x")


if __name__ == "__main__":
    main()
