"""The seeds whose one-hour runs found defects (issue 19's campaigns), kept: each runs again,
as ``mm simulate`` runs it (its own process, seeded whole), and must keep every invariant.

- seed 2: a long kill escalated the mode (the trades channel, unread, counted as a slow
  consumer) and the rearmed strategy read the backlog as happening now;
- seed 9: two account readings 7 s apart, and the liquidation detector dropped the fills of
  the first seconds for their age;
- seed 22: a slot's modify of an order filled while it awaited its cancels crashed the slot;
- seed 29: a reading answered late (its reply lost, asked again) had spent the window of the
  fills it held, and the kill switch tripped as a forced liquidation;
- seed 74 (the harness's): the operator's kill, drawn while the service was down, came when
  it was back up, and was judged against the drawn time;
- seed 100: a modify held 3.5 s by the venue's 500s; meanwhile the book went stale and the
  strategy pulled, but the slot went on with its old plan and placed quotes that filled;
- seed 562 (the 1,000-seed campaign's): a place's reply lost, and the orderStatus asking about
  it too, held the symbol's worker 10 s; the pull waited behind it, and the symbol's resting
  quotes stayed on the stale book.

A seed replays its run only while ``mm.simulation.campaign.draw`` draws the same schedule for
it: a change there changes what these seeds meet. The draws added since (the venue's commit
delay, the operator's flatten, another client's order) are drawn after the others, so each
seed still meets what it met then, with those on top. Each defect also has a test of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.virtual import SHIPPED_CONFIG

FOUND = "2,9,22,29,74,100,562"


def test_the_seeds_that_found_defects_keep_every_invariant(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mm", "simulate", "-c", str(SHIPPED_CONFIG)]
    command += ["--seeds", FOUND, "--hours", "1", "--jobs", "2", "--dir", str(tmp_path)]
    # The timeout guards against a hang, not the machine's speed: seven one-hour runs take
    # about 150 s on two idle cores, and many times that beside a campaign on the same cores.
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeds run: 7, passed: 7" in done.stdout, done.stdout


# make test's own campaign (its scheduler unseeded) found this one, about one run in eight:
# seed 16's stall began with none of BTC's orders live and part of its last ladder waiting
# for the order budget; the pull sent no empty ladder (nothing was live to cancel), so the
# budget's tokens had the slot plan that last ladder again, and it placed quotes on the stale
# book for five seconds. This scheduler draw replays it, as ``mm simulate`` seeds a run.
REPLAY_16 = """
import sys
from pathlib import Path
import trio, trio.testing
from loguru import logger
from mm.simulation import campaign
logger.remove()
campaign._seed_everything("scheduled/16/3")
outcome = trio.run(
    campaign.simulate,
    Path(sys.argv[1]),
    campaign.draw("market_maker", 16, 600.0),
    Path(sys.argv[2]),
    clock=trio.testing.MockClock(autojump_threshold=0),
)
print([str(violation) for violation in outcome.violations])
"""


def test_seed_16_in_the_schedule_where_a_pull_found_no_order_live(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-c", REPLAY_16, str(SHIPPED_CONFIG), str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
