"""A campaign's ledger: the outcome of each seed's run, appended as the run ends, so that a
campaign stopped part way (the machine rebooted, the operator's Ctrl-C, a session's end) goes
on where it stopped instead of from its first seed.

A ledger is ``campaign.jsonl`` in the campaign's directory: a first line naming what its runs
are a function of (the code of the ``mm`` package, by digest, the config file's bytes, by
digest, the strategy and the simulated seconds of a run), then one line per run that ended.
Runs are only taken from a ledger whose first line matches the campaign's: an outcome recorded
on other code or another config says nothing about this one, so such a ledger is set aside
(renamed ``campaign.jsonl.old``) and every seed runs. Each run's line carries the wall time
its campaign had taken when it ended, and which invocation of the campaign that was, so the
campaign's wall time is the sum over its invocations.

Fails: ``OSError`` when the ledger cannot be written; a line that does not read (a run cut
off mid-write) is skipped, and its seed runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

import mm

LEDGER_NAME: Final = "campaign.jsonl"


def code_digest(package: Path = Path(mm.__file__).parent) -> str:
    """The digest of every Python source under ``package``: what a run's code is."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def heading(config_path: Path, kind: str, seconds: float) -> dict[str, Any]:
    """The ledger's first line for a campaign of ``kind`` on ``config_path``."""
    return {
        "code": code_digest(),
        "config": hashlib.sha256(config_path.read_bytes()).hexdigest()[:16],
        "kind": kind,
        "seconds": seconds,
    }


@attrs.frozen
class Recorded:
    """A run the ledger holds: its seed, what it found (as ``Outcome`` has them), and the
    invocation of the campaign it ended in, with the wall time that invocation had taken."""

    seed: int
    violations: tuple[tuple[str, str], ...]  # (invariant, detail)
    fills: int
    triangles: int
    wall_s: float
    error: str | None
    invocation: int
    campaign_wall_s: float


class Ledger:
    """The ledger of the campaign in ``directory`` (module docstring): ``recorded`` holds the
    runs that ended in earlier invocations on the same code and config, ``record`` appends a
    run as it ends."""

    def __init__(self, directory: Path, head: dict[str, Any]) -> None:
        self.path = directory / LEDGER_NAME
        self.recorded: dict[int, Recorded] = {}
        self.set_aside = False
        if self.path.exists():
            lines = self.path.read_bytes().splitlines()
            if lines and _read(lines[0]) == head:
                for record in _records(lines[1:]):
                    self.recorded[record.seed] = record
            else:
                self.path.replace(self.path.with_name(LEDGER_NAME + ".old"))
                self.set_aside = True
        if not self.path.exists():
            self.path.write_bytes(orjson.dumps(head) + b"\n")
        self.invocation = 1 + max(
            (record.invocation for record in self.recorded.values()), default=0
        )

    def earlier_wall_s(self) -> float:
        """The wall time the earlier invocations took, each up to its last run's end."""
        by_invocation: dict[int, float] = {}
        for record in self.recorded.values():
            by_invocation[record.invocation] = max(
                by_invocation.get(record.invocation, 0.0), record.campaign_wall_s
            )
        return sum(by_invocation.values())

    def record(self, record: Recorded) -> None:
        line = orjson.dumps(attrs.asdict(record)) + b"\n"
        with self.path.open("ab") as ledger:
            ledger.write(line)
        self.recorded[record.seed] = record


def _read(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _records(lines: Iterable[bytes]) -> Iterator[Recorded]:
    for line in lines:
        fields = _read(line)
        if not isinstance(fields, dict):
            continue  # cut off mid-write: its seed runs again
        try:
            yield Recorded(
                seed=int(fields["seed"]),
                violations=tuple((str(name), str(detail)) for name, detail in fields["violations"]),
                fills=int(fields["fills"]),
                triangles=int(fields["triangles"]),
                wall_s=float(fields["wall_s"]),
                error=fields["error"],
                invocation=int(fields["invocation"]),
                campaign_wall_s=float(fields["campaign_wall_s"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
