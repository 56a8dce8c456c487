"""``mm check`` and the metric agree on API headroom (issue 12, item 5).

The check used to compute the address budget alone from the venue (99%) while
``mm_api_headroom_ratio`` showed the limiter's tightest budget, the IP weight mm spends
(0.83). Both now come from the rate limiter: the running mm's own.
"""

from __future__ import annotations

import re
from pathlib import Path

import trio

from mm.config import resolve_secrets
from mm.ops.checks import run_checks
from tests.e2e.virtual import shipped_env, shipped_service


async def test_check_reports_the_headroom_the_metric_shows(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    async with shipped_service(run_dir) as service:
        await trio.sleep(60.0)  # trading spends IP weight: the tightest budget is not 100%
        results = await run_checks(
            service.config,
            resolve_secrets(service.config, shipped_env(run_dir)),
            post=False,
            admin_url=service.admin_url,
        )
        metric = service.registry.get_sample_value("mm_api_headroom_ratio", {"kind": "overall"})
    (check,) = [result for result in results if result.name == "api_headroom"]
    match = re.match(r"headroom (\d+)%", check.detail)
    assert match is not None, check.detail
    assert metric is not None
    assert metric < 0.99
    # The same figure, up to the weight spent in the second between the metric's export and
    # the check (it used to read 99% beside 0.83).
    assert abs(int(match.group(1)) / 100 - metric) <= 0.05, (check.detail, metric)
    assert "from the running mm's limiter" in check.detail
