"""Asking the venue whether the configured key may trade for the configured account.

``check_access`` asks (``userRole`` of the signer and of the account, ``vaultDetails`` for a
vault, and a ``noop`` signed by the key, which spends one nonce and acts on nothing) and judges
the answers with ``mm.venues.hyperliquid.authority.judge``. ``VenueAccess`` is the user feed's
gate before anything is sent for the account: ``until_allowed`` checks, and while the venue
refuses it says why (in ``/status``, in readiness as a reason mm does not trade, and in one
ERROR line per distinct problem) and asks again every ``feeds.startup.access_recheck_s``, so an
API wallet approved or an account funded meanwhile starts trading without a restart. Nothing
is sent for the account until the venue allows it. A request that fails (timeout, 5xx) fails
the check like any startup request (the child restarts with backoff); a 429 is waited out
(the ``RateLimitWaits`` the caller hands over: the service's startup waits).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio
from loguru import logger

from mm import clock
from mm.venues.base import RateLimited, RateLimitWaits, VenueError
from mm.venues.hyperliquid.authority import Access, judge
from mm.venues.hyperliquid.client import HyperliquidClient

STEP = "venue_access"
PROBE_TRIES = 3


async def check_access(client: HyperliquidClient, *, network: str) -> Access:
    """The venue's answers about ``client``'s key and account, judged (one pass)."""
    signer = client.signer.address.lower()
    account = client.account
    signer_role = await client.user_role(signer)
    account_role = signer_role if account == signer else await client.user_role(account)
    leader = await client.vault_leader(account) if account_role.role == "vault" else None
    probe = await _probe(client)
    return judge(
        account,
        signer,
        signer_role=signer_role,
        account_role=account_role,
        vault_leader=leader,
        probe=probe,
        network=network,
    )


async def _probe(client: HyperliquidClient) -> str | None:
    """The venue's refusal of a ``noop`` signed by the key (None: accepted, or no answer came).

    Sent over REST, so that a reply lost on the WebSocket does not make a harmless noop's fate
    unknown; a noop with no answer after ``PROBE_TRIES`` is not judged (the roles still are),
    and a 429 is the caller's to wait out."""
    rest = client.over_rest()
    for attempt in range(1, PROBE_TRIES + 1):
        try:
            return await rest.noop()
        except RateLimited:
            raise
        except VenueError as error:
            logger.warning(
                "venue access: the signed noop got no answer ({}), try {}", error, attempt
            )
    logger.warning("venue access: the key's signature could not be tried; judged on roles alone")
    return None


class VenueAccess:
    """The gate of the account's access, shared by every start of the user feed; its last
    answer shows in status and, while refused, in readiness."""

    def __init__(self, *, network: str, recheck_s: float) -> None:
        self._network = network
        self._recheck_s = recheck_s
        self.access: Access | None = None
        self._checked_at: float | None = None  # wall time of the last answer
        self._refused_since: float | None = None
        self._checks = 0

    async def until_allowed(self, client: HyperliquidClient, waits: RateLimitWaits) -> Access:
        """The venue's ``Access`` once it allows the key to trade for the account; until then,
        asked again every ``recheck_s`` (each check waiting out the rate limit with ``waits``)."""
        logged: str | None = None
        while True:
            access = await waits.call(STEP, partial(check_access, client, network=self._network))
            self._checks += 1
            self.access, self._checked_at = access, clock.wall()
            if access.allowed:
                if self._refused_since is not None:
                    logger.info("venue access allowed now: {}", access.summary)
                else:
                    logger.info("venue access: {}", access.summary)
                self._refused_since = None
                return access
            if self._refused_since is None:
                self._refused_since = clock.wall()
            if access.problem != logged:
                logger.error(
                    "venue access refused, nothing is sent for {}: {}; asking again every {:g}s",
                    access.account,
                    access.problem,
                    self._recheck_s,
                )
                logged = access.problem
            await trio.sleep(self._recheck_s)

    def refused(self) -> str | None:
        """Why the venue refuses the key for the account now (None: allowed, or not asked)."""
        access = self.access
        return access.problem if access is not None and not access.allowed else None

    def status(self) -> dict[str, Any]:
        access = self.access
        if access is None:
            return {"checked": False}
        return {
            "checked": True,
            "allowed": access.allowed,
            "account": access.account,
            "signer": access.signer,
            "signs_for": access.principal,
            "vault_address": access.vault_address,
            "summary": access.summary,
            "problem": access.problem,
            "checked_at": self._checked_at,
            "refused_since": self._refused_since,
            "checks": self._checks,
        }
