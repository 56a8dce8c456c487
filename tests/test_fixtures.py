"""The repository is self-contained: nothing refers to a path outside it, and the recorded
fixtures it reads are in ``tests/fixtures``, each with its source named in the README there."""

from __future__ import annotations

import re
from pathlib import Path

from tests.fixture_paths import FIXTURES, HYPERLIQUID

REPO = Path(__file__).resolve().parents[1]
# The code, its tests and benchmarks, the deployment files, and the top-level files that drive
# them. A local .env (deploy/.env, git-ignored) holds secrets: never read.
SCANNED = ("mm", "supervisors", "tests", "benchmarks", "deploy")
TOP_LEVEL = ("Makefile", "pyproject.toml", "config.toml", "config.triarb.toml", "README.md")

# Ways of reaching outside the repository: the absolute working directory, the shared fixtures
# folder beside the clone, or a path component named shared joined with pathlib's "/". The
# character classes keep this file from matching its own patterns.
OUTSIDE = re.compile(r"/wor[k]/|share[d]/fixtures|\.\./share[d]\b|/\s*[\"']share[d][\"']")


def text_files(top: Path) -> list[Path]:
    files: list[Path] = []
    for path in sorted(top.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.name == ".env":
            continue
        files.append(path)
    return files


def outside_references(text: str) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE.search(line)
    ]


def test_the_pattern_catches_each_way_out() -> None:
    absolute = "/" + "work" + "/shared" + "/fixtures/hyperliquid"
    relative = "../" + "shared" + "/fixtures/hyperliquid"
    built = 'Path(__file__).parents[3].parent / "' + "shared" + '" / "fixtures"'
    for line in (f'FIXTURES = Path("{absolute}")', f"see ``{relative}``", built):
        assert outside_references(f"ok\n{line}\n") == [(2, line)]
    innocent = "x = 'shared'\ny = \"shared_state\"\nshared = 1\n# the shared folder\n"
    assert outside_references(innocent) == []


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    offenders: list[str] = []
    scanned = 0
    paths = [REPO / name for name in TOP_LEVEL if (REPO / name).is_file()]
    for top in SCANNED:
        paths.extend(text_files(REPO / top))
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: no path to read
        scanned += 1
        offenders.extend(
            f"{path.relative_to(REPO)}:{number}: {line}"
            for number, line in outside_references(text)
        )
    assert all(name in {p.name for p in paths} for name in ("Makefile", "pyproject.toml"))
    assert scanned > 100, scanned  # the scan saw the tree, not an empty folder
    assert offenders == [], "\n".join(offenders)


def test_fixtures_are_in_the_repository() -> None:
    assert FIXTURES == REPO / "tests" / "fixtures"
    assert HYPERLIQUID.is_relative_to(REPO)
    names = {path.name for path in HYPERLIQUID.iterdir()}
    assert {
        "error_messages.json",
        "info_responses.json",
        "signing_vectors.json",
        "ws_frames.jsonl",
    } <= names


def test_the_readme_names_the_source_of_every_fixture() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    present = {
        path.relative_to(FIXTURES).as_posix()
        for path in text_files(FIXTURES)
        if path.name != "README.md"
    }
    assert present, "no fixtures found"
    assert listed == present
