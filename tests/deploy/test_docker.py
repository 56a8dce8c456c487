"""The container: deploy/Dockerfile, deploy/docker-compose.yml, Prometheus' and Grafana's files.

No Docker engine is needed. The compose file is validated against the vendored compose-spec
JSON schema and checked for what the stack relies on; the Dockerfile is parsed and checked; its
install steps are compared with the Makefile's, then run outside Docker in a copy of the build
context, and the installed entry point is started with the image's environment: it passes
``mm check``, answers the HEALTHCHECK command, and stops with exit 0 on the STOPSIGNAL within
the compose stop_grace_period. When a docker client with compose is on the PATH, ``docker
compose config`` checks the compose file too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from mm import __version__
from mm.runfile import read_info

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
MAKEFILE = REPO / "Makefile"
DOCKERIGNORE = REPO / ".dockerignore"
SCHEMA = REPO / "tests" / "fixtures" / "compose-spec.json"
CONFIG = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))

TOKEN = "docker-test-admin-token-0123"
INSTALL_TIMEOUT = 300.0
SERVICES = {"mm", "prometheus", "grafana"}
DATASOURCE_UID = "mm-prometheus"


# --- a small Dockerfile parser ------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # continuation lines joined
    line: int

    def flags(self) -> tuple[dict[str, str], str]:
        """The leading ``--name=value`` options, and the rest of the arguments."""
        options: dict[str, str] = {}
        rest = self.args
        while match := re.match(r"--([a-z-]+)=(\S+)\s*", rest):
            options[match[1]] = match[2]
            rest = rest[match.end() :]
        return options, rest


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.image}, got {found}"
        return found[0]

    def index(self, instruction: Instruction) -> int:
        return self.instructions.index(instruction)

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(parse_env(instruction.args))
        return values

    def workdir(self) -> str:
        return self.one("WORKDIR").args


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    assert not re.search(r"^#\s*escape\s*=", text, re.M | re.I), "escape directive unsupported"
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped too, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def parse_stages(instructions: Iterable[Instruction]) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            _, rest = instruction.flags()
            words = rest.split()
            assert len(words) in (1, 3), f"line {instruction.line}: FROM {instruction.args}"
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(text: str, what: str) -> list[str]:
    """A JSON-array (exec form) argument; the shell form fails."""
    text = text.strip()
    assert text.startswith("["), f"{what} must be in exec form (a JSON array), got {text!r}"
    value = json.loads(text)
    assert isinstance(value, list), f"{what}: not a JSON array: {text!r}"
    assert value, f"{what}: empty"
    assert all(isinstance(item, str) for item in value), f"{what}: not all strings: {text!r}"
    return [str(item) for item in value]


def parse_env(args: str) -> dict[str, str]:
    """``ENV K=V K2="V 2"``, or the legacy ``ENV K some value``."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: args.split(None, 1)[1] if len(words) > 1 else ""}
    pairs = (word.partition("=") for word in words)
    return {key: value for key, _, value in pairs}


def shell_commands(commands: Iterable[str]) -> list[list[str]]:
    """Shell command lines as words, ``&&`` chains split into their commands."""
    words: list[list[str]] = []
    for command in commands:
        for part in command.split("&&"):
            words.append(shlex.split(part))
    return words


def regular_install(words: list[str]) -> list[str]:
    """The one allowed difference: the Makefile installs editable (-e .), the image does not."""
    result: list[str] = []
    skip = False
    for index, word in enumerate(words):
        if skip:
            skip = False
        elif word in ("-e", "--editable") and index + 1 < len(words):
            result.append(words[index + 1])
            skip = True
        else:
            result.append(word.removeprefix("--editable="))
    return result


@dataclass
class Dockerfile:
    stages: list[Stage]

    @classmethod
    def read(cls, path: Path = DOCKERFILE) -> Dockerfile:
        return cls(parse_stages(parse_dockerfile(path.read_text(encoding="utf-8"))))

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    @property
    def builder(self) -> Stage:
        """The stage whose result the final stage copies (COPY --from=...)."""
        names = {i.flags()[0]["from"] for i in self.final.all("COPY") if "from" in i.flags()[0]}
        assert len(names) == 1, f"expected one COPY --from stage in the final stage, got {names}"
        (name,) = names
        (stage,) = [s for s in self.stages[:-1] if s.name == name]
        return stage

    def install_commands(self) -> list[str]:
        """The builder stage's RUN commands: the install."""
        return [run.args for run in self.builder.all("RUN")]

    def volume(self) -> str:
        volumes = self.final.one("VOLUME").args
        paths = exec_form(volumes, "VOLUME") if volumes.startswith("[") else volumes.split()
        assert len(paths) == 1, f"expected one volume, got {paths}"
        return paths[0]

    def entry(self) -> list[str]:
        """ENTRYPOINT followed by CMD: what the container runs."""
        entrypoint = exec_form(self.final.one("ENTRYPOINT").args, "ENTRYPOINT")
        return entrypoint + exec_form(self.final.one("CMD").args, "CMD")

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        options, rest = self.final.one("HEALTHCHECK").flags()
        keyword, _, command = rest.partition(" ")
        assert keyword.upper() == "CMD", f"HEALTHCHECK must run a command, got {rest!r}"
        return options, exec_form(command, "HEALTHCHECK CMD")

    def copies(self, stage: Stage) -> list[tuple[str | None, list[str], str]]:
        """COPY instructions as (from stage or None for the context, sources, destination)."""
        result: list[tuple[str | None, list[str], str]] = []
        for instruction in stage.all("COPY"):
            options, rest = instruction.flags()
            words = exec_form(rest, "COPY") if rest.startswith("[") else rest.split()
            assert len(words) >= 2, f"line {instruction.line}: COPY {instruction.args}"
            result.append((options.get("from"), words[:-1], words[-1]))
        return result


def under(path: str, workdir: str) -> str:
    """A path in the image relative to the workdir (which it must be in)."""
    relative = PurePosixPath(workdir, path).relative_to(workdir)
    return str(relative)


# --- a small Makefile parser --------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?=|:=|::=|\+=|=)\s*(.*)$")
RULE = re.compile(r"^([^:=#]+?)\s*:(?![:=])\s*(.*)$")
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass
class Rule:
    prerequisites: list[str]  # normal, then order-only
    recipe: list[str]


def parse_makefile(text: str) -> dict[str, Rule]:
    """Rules by (expanded) target, with expanded prerequisites and recipe lines."""
    variables: dict[str, str] = {"MAKE": "make"}  # make's own, for a recursive make
    raw: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("\t"):
            assert raw, f"a recipe line outside any rule: {line!r}"
            raw[-1][2].append(line.strip())
            continue
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        if assignment := ASSIGNMENT.match(stripped):
            variables[assignment[1]] = assignment[2].strip()
        elif rule := RULE.match(stripped):
            raw.append((rule[1], rule[2], []))

    def expand(value: str, target: str = "") -> str:
        value = value.replace("$@", target)
        for _ in range(20):
            unknown = [m[1] for m in REFERENCE.finditer(value) if m[1] not in variables]
            assert not unknown, f"undefined make variables {unknown} in {value!r}"
            expanded = REFERENCE.sub(lambda m: variables[m[1]], value)
            if expanded == value:
                return value.replace("$$", "$")
            value = expanded
        raise AssertionError(f"make variables nest too deep in {value!r}")

    rules: dict[str, Rule] = {}
    for targets, prerequisites, recipe in raw:
        for target in expand(targets).split():
            words = [w for w in expand(prerequisites, target).split() if w != "|"]
            rules[target] = Rule(words, [expand(line, target) for line in recipe])
    return rules


def prerequisite_commands(rules: dict[str, Rule], goal: str) -> list[str]:
    """What ``make goal`` runs before goal's own recipe, in order, without stamp files."""
    seen: set[str] = set()
    commands: list[str] = []

    def visit(target: str) -> None:
        if target in seen or target not in rules:
            return
        seen.add(target)
        for prerequisite in rules[target].prerequisites:
            visit(prerequisite)
        if target == goal:
            return
        for command in rules[target].recipe:
            words = shlex.split(command)
            if words[:1] == ["touch"] and target in words:
                continue  # make's own bookkeeping: the stamp file of a target
            commands.append(command)

    visit(goal)
    return commands


# --- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


def dockerignore(path: Path = DOCKERIGNORE) -> Callable[[str], bool]:
    """Whether a context-relative path is left out of the build context."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            pattern = str(PurePosixPath(line.removeprefix("!").strip("/")))
            rules.append((negated, _pattern_regex(pattern)))

    def ignored(relative: str) -> bool:
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negated, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                result = not negated
        return result

    return ignored


# --- compose helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    bind: bool
    read_only: bool


def mounts(service: dict[str, Any]) -> list[Mount]:
    result: list[Mount] = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, target, *mode = entry.split(":")
            bind = source.startswith((".", "/", "~"))
            result.append(Mount(source, target, bind, "ro" in ",".join(mode).split(",")))
        else:
            bind = entry.get("type") == "bind"
            ro = bool(entry.get("read_only", False))
            result.append(Mount(str(entry.get("source", "")), entry["target"], bind, ro))
    return result


def host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The file on the host (relative to deploy/) that a bind mount puts at container_path."""
    best: tuple[int, Path] | None = None
    for mount in mounts(service):
        target = PurePosixPath(mount.target)
        wanted = PurePosixPath(container_path)
        if mount.bind and (wanted == target or target in wanted.parents):
            candidate = DEPLOY / mount.source / wanted.relative_to(target)
            if best is None or len(target.parts) > best[0]:
                best = (len(target.parts), candidate)
    return None if best is None else best[1]


def container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def seconds(duration: str) -> float:
    """A compose / Prometheus duration ("30s", "1m30s") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path}: not a mapping"
    return document


def yaml_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def schema_errors(document: Any) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


# --- the compose file ---------------------------------------------------------------------------


def test_compose_file_follows_the_compose_spec(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["mm"]["stop_grace"] = "30s"  # a misspelt key
    broken["services"]["grafana"]["ports"] = "3000:3000"  # a string where a list belongs
    errors = schema_errors(broken)
    assert any("stop_grace" in error for error in errors), errors
    assert any(error.startswith("services.grafana.ports") for error in errors), errors


def test_compose_runs_mm_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for mount in mounts(service):
            if mount.bind:
                where = DEPLOY / mount.source
                assert where.exists(), f"{name}: bind mount source {mount.source} is missing"
            else:
                assert mount.source in declared, f"{name}: volume {mount.source} not declared"


def test_compose_builds_mm_from_the_dockerfile(
    services: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> None:
    mm = services["mm"]
    context = (DEPLOY / mm["build"]["context"]).resolve()
    assert context == REPO
    assert (context / mm["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert "command" not in mm, "the image's CMD runs mm start"
    assert "entrypoint" not in mm, "mm runs as PID 1 (exec form) to receive SIGTERM"
    assert "healthcheck" not in mm, "the image's HEALTHCHECK (/healthz) is inherited"


def test_compose_keeps_the_run_dir_on_a_named_volume(
    services: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> None:
    on_run_dir = [m for m in mounts(services["mm"]) if m.target == dockerfile.volume()]
    assert len(on_run_dir) == 1, mounts(services["mm"])
    assert not on_run_dir[0].bind
    assert not on_run_dir[0].read_only


def test_compose_publishes_the_admin_port_and_stops_gracefully(
    services: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> None:
    mm = services["mm"]
    assert CONFIG["admin"]["port"] in container_ports(mm)
    assert seconds(mm["stop_grace_period"]) >= 30.0
    assert mm.get("stop_signal", "SIGTERM") == dockerfile.final.one("STOPSIGNAL").args


def test_compose_requires_the_admin_token(services: dict[str, dict[str, Any]]) -> None:
    name = CONFIG["admin"]["token_env"]
    environment = services["mm"]["environment"]
    assert isinstance(environment, dict), "environment as a mapping"
    # ${NAME:?message}: compose refuses to start without it instead of starting mm without a
    # token (which mm refuses too, later, on a non-loopback admin host).
    assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", str(environment[name])), environment[name]


def test_prometheus_scrapes_mm_and_loads_the_rules(
    services: dict[str, dict[str, Any]], dockerfile: Dockerfile
) -> None:
    prometheus = services["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    assert "mm" in prometheus["depends_on"]
    assert 9090 in container_ports(prometheus)
    flags = [f for f in prometheus.get("command", []) if f.startswith("--config.file=")]
    config_path = flags[-1].partition("=")[2] if flags else "/etc/prometheus/prometheus.yml"
    config_file = host_path(prometheus, config_path)
    assert config_file == DEPLOY / "prometheus" / "prometheus.yml"
    config = load_yaml(config_file)

    scrape = {job["job_name"]: job for job in config["scrape_configs"]}
    mm = scrape["mm"]
    targets = [t for group in mm["static_configs"] for t in group["targets"]]
    assert targets == [f"mm:{CONFIG['admin']['port']}"]
    assert dockerfile.final.one("EXPOSE").args.split() == [str(CONFIG["admin"]["port"])]
    assert mm.get("metrics_path", "/metrics") == "/metrics"
    assert seconds(mm["scrape_interval"]) == 5.0
    # Prometheus refuses a scrape timeout above the scrape interval.
    global_ = config.get("global", {})
    interval = seconds(global_.get("scrape_interval", "1m"))
    assert seconds(global_.get("scrape_timeout", "10s")) <= interval
    for job in scrape.values():
        if "scrape_timeout" in job:
            job_interval = seconds(job.get("scrape_interval", f"{interval}s"))
            assert seconds(job["scrape_timeout"]) <= job_interval, job

    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    rules = host_path(prometheus, "/etc/prometheus/rules")
    assert rules == DEPLOY / "prometheus" / "rules"


def test_grafana_provisions_the_datasource_and_the_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    version = re.fullmatch(r"grafana/grafana(?:-oss)?:(11\.\d+)\.\d+", grafana["image"])
    assert version, grafana["image"]
    # The dashboards are generated with grafana-foundation-sdk for one Grafana version (their
    # schemaVersion): the image runs that version.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in pyproject["project"]["optional-dependencies"]["test"]:
        if pinned := re.fullmatch(r"grafana-foundation-sdk==(?:\d+!)?(\d+\.\d+)\.\d+", requirement):
            assert pinned[1] == version[1], f"dashboards for Grafana {pinned[1]}"
    assert 3000 in container_ports(grafana)
    provisioning = grafana.get("environment", {}).get(
        "GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"
    )

    datasources_dir = host_path(grafana, f"{provisioning}/datasources")
    assert datasources_dir is not None
    assert datasources_dir.is_dir()
    datasources = [
        source
        for path in yaml_files(datasources_dir)
        for source in load_yaml(path).get("datasources", [])
    ]
    (default,) = [source for source in datasources if source.get("isDefault")]
    assert default["uid"] == DATASOURCE_UID
    assert default["type"] == "prometheus"
    assert default["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    assert 9090 in container_ports(services["prometheus"])

    dashboards_dir = host_path(grafana, f"{provisioning}/dashboards")
    assert dashboards_dir is not None
    assert dashboards_dir.is_dir()
    providers = [
        provider
        for path in yaml_files(dashboards_dir)
        for provider in load_yaml(path).get("providers", [])
    ]
    assert providers
    for provider in providers:
        assert provider.get("type", "file") == "file"
        path = provider["options"]["path"]
        assert path == "/var/lib/grafana/dashboards"
        assert host_path(grafana, path) == DEPLOY / "grafana" / "dashboards"


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return [docker, "compose"] if version.returncode == 0 else None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no docker client with the compose plugin (`docker compose version` failed)")
    # --env-file: a deploy/.env of this machine must not supply the token.
    command = [*cli, "--env-file", os.devnull, "-f", str(COMPOSE), "config", "-q"]
    environ = {k: v for k, v in os.environ.items() if k != CONFIG["admin"]["token_env"]}
    without = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert without.returncode != 0, "compose must refuse to run without the admin token"
    environ[CONFIG["admin"]["token_env"]] = TOKEN
    result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_slim(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "a builder stage and a runtime stage"
    assert {stage.image for stage in dockerfile.stages} == {"python:3.11-slim"}
    assert dockerfile.builder is not dockerfile.final


def test_dockerfile_runs_as_a_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    user = final.one("USER")
    assert final.index(user) < final.index(final.one("ENTRYPOINT"))
    uid, _, gid = user.args.partition(":")
    created = " ".join(run.args for run in final.all("RUN"))
    if not uid.isdigit():  # a name: the uid it was created with
        match = re.search(rf"useradd\b[^&;]*--uid\s+(\d+)[^&;]*\s{re.escape(uid)}\b", created)
        assert match, f"USER {uid}: not created with a fixed --uid"
        uid = match[1]
    assert uid == "10001"
    assert gid in ("", "10001", "mm")
    assert re.search(r"groupadd\b[^&;]*--gid\s+10001\b", created)
    assert re.search(r"useradd\b[^&;]*--uid\s+10001\b", created)
    # The run directory belongs to the user; changes after VOLUME would be discarded.
    volume = dockerfile.volume()
    chown = [
        run
        for run in final.all("RUN")
        if re.search(rf"chown\s+\S+\s+{re.escape(volume)}\b", run.args)
    ]
    assert chown, f"{volume} is not chowned to the user"
    assert final.index(chown[0]) < final.index(final.one("VOLUME"))
    # And private to it: a new volume takes the directory's mode (issue 13, item 13).
    chmod = [
        run
        for run in final.all("RUN")
        if re.search(rf"chmod\s+0?700\s+{re.escape(volume)}\b", run.args)
    ]
    assert chmod, f"{volume} is not made private (chmod 0700) to the user"
    assert final.index(chmod[0]) < final.index(final.one("VOLUME"))


def test_dockerfile_env_points_the_run_dir_at_the_volume(dockerfile: Dockerfile) -> None:
    env = dockerfile.final.env()
    assert env["MM_SERVICE__RUN_DIR"] == dockerfile.volume()
    assert env["MM_ADMIN__HOST"] == "0.0.0.0"
    assert dockerfile.final.one("EXPOSE").args.split() == [str(CONFIG["admin"]["port"])]
    assert dockerfile.final.one("STOPSIGNAL").args == "SIGTERM"


def test_dockerfile_entrypoint_is_mm_start_in_exec_form(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    workdir = final.workdir()
    assert exec_form(final.one("ENTRYPOINT").args, "ENTRYPOINT") == [f"{workdir}/.venv/bin/mm"]
    command = exec_form(final.one("CMD").args, "CMD")
    assert command[0] == "start"
    assert command[command.index("-c") + 1] == f"{workdir}/config.toml"
    copied = [(source, dest) for origin, source, dest in dockerfile.copies(final) if not origin]
    assert (["config.toml"], f"{workdir}/config.toml") in copied
    # The image runs what `make run` runs, with paths from the workdir.
    run = parse_makefile(MAKEFILE.read_text(encoding="utf-8"))["run"].recipe
    image = [
        under(word, workdir) if word.startswith(workdir) else word for word in dockerfile.entry()
    ]
    assert shell_commands(run) == [image]


def test_dockerfile_healthcheck_gets_healthz_without_curl(dockerfile: Dockerfile) -> None:
    options, command = dockerfile.healthcheck()
    workdir = dockerfile.final.workdir()
    assert command[0] == f"{workdir}/.venv/bin/python"
    assert f"http://127.0.0.1:{CONFIG['admin']['port']}/healthz" in command[-1]
    for option in ("interval", "timeout", "start-period"):
        seconds(options[option])
    assert seconds(options["timeout"]) < seconds(options["interval"])


def install_differences(
    makefile: str, dockerfile: Dockerfile
) -> tuple[list[list[str]], list[list[str]]]:
    """The Makefile's install for `make run` and the image's, as comparable words."""
    make = prerequisite_commands(parse_makefile(makefile), "run")
    assert make, "the Makefile's run target installs nothing?"
    image = dockerfile.install_commands()
    return (
        [regular_install(words) for words in shell_commands(make)],
        [regular_install(words) for words in shell_commands(image)],
    )


def test_dockerfile_installs_with_the_makefiles_commands(dockerfile: Dockerfile) -> None:
    make, image = install_differences(MAKEFILE.read_text(encoding="utf-8"), dockerfile)
    assert image == make
    # The image's install is a regular one: the venv is copied without the sources.
    assert "-e" not in " ".join(dockerfile.install_commands()).split()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("install --quiet", "install --quiet --pre"),
        ("-m venv", "-m venv --system-site-packages"),
        ("-e .", "-e '.[test]'"),
    ],
)
def test_the_install_comparison_catches_a_drift(
    dockerfile: Dockerfile, before: str, after: str
) -> None:
    text = MAKEFILE.read_text(encoding="utf-8")
    drifted = text.replace(before, after, 1)
    assert drifted != text
    make, image = install_differences(drifted, dockerfile)
    assert image != make


def test_dockerignore_keeps_what_the_dockerfile_copies(dockerfile: Dockerfile) -> None:
    ignored = dockerignore()
    for stage in dockerfile.stages:
        for origin, sources, _ in dockerfile.copies(stage):
            for source in sources if origin is None else []:
                assert (REPO / source).exists(), source
                assert not ignored(source), f"{source} is left out by .dockerignore"
    for left_out in (".venv", "run", ".git", "tests", "mm/__pycache__/cli.cpython-311.pyc"):
        assert ignored(left_out), left_out
    assert not ignored("mm/cli.py")


# --- the image's install and entry point, outside Docker ----------------------------------------


@dataclass
class Installed:
    """The image's filesystem where it matters: the workdir and the volume, on the host."""

    root: Path  # stands for the workdir
    volume: Path  # stands for the VOLUME
    workdir: str
    env: dict[str, str]  # the image's environment, the volume path replaced

    def host(self, image_path: str) -> str:
        """An absolute path in the workdir on the host; other words as they are."""
        if image_path.startswith(self.workdir + "/"):
            return str(self.root / under(image_path, self.workdir))
        return image_path

    def destination(self, dest: str) -> Path:
        """A COPY destination (relative ones are in the workdir) on the host."""
        return self.root / under(dest, self.workdir)


def _base_environ() -> dict[str, str]:
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if not k.startswith("MM_") and k not in dropped}


def _copy_from_context(sources: list[str], dest: Path, into: bool) -> None:
    ignored = dockerignore()

    def skip(directory: str, names: list[str]) -> list[str]:
        relative = Path(directory).relative_to(REPO)
        return [name for name in names if ignored(str(relative / name))]

    for source in sources:
        path = REPO / source
        if path.is_dir():  # like COPY: the directory's contents
            shutil.copytree(path, dest, ignore=skip, dirs_exist_ok=True)
        else:
            target = dest / path.name if into else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, dockerfile: Dockerfile) -> Installed:
    """The builder stage's COPY and RUN steps, then the final stage's COPYs, in a temp dir.

    The builder works in root; then root keeps only what the final stage copies from it (the
    venv, at the path it was built at, since a venv cannot move) and from the context.
    """
    base = tmp_path_factory.mktemp("image")
    root, volume, built = base / "workdir", base / "volume", base / "builder"
    root.mkdir()
    volume.mkdir()
    builder, final = dockerfile.builder, dockerfile.final
    workdir = builder.workdir()
    assert final.workdir() == workdir, "the venv is used where it was built"
    image = Installed(root, volume, workdir, {})

    environ = _base_environ() | builder.env()
    for instruction in builder.instructions:
        if instruction.keyword == "COPY":
            _, rest = instruction.flags()
            *sources, dest = rest.split()
            _copy_from_context(sources, image.destination(dest), dest.endswith("/"))
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                ["/bin/sh", "-c", instruction.args],
                cwd=root,
                env=environ,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, f"RUN {instruction.args}\n{done.stdout}{done.stderr}"

    root.rename(built)
    root.mkdir()
    for origin, sources, dest in dockerfile.copies(final):
        if origin is None:
            _copy_from_context(sources, image.destination(dest), dest.endswith("/"))
        else:
            assert sources == [dest], "the venv is copied to where it was built"
            source = built / under(dest, workdir)
            assert source.is_dir(), f"{dest} was not built"
            target = image.destination(dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
    shutil.rmtree(built)

    vol = dockerfile.volume()
    image.env = {k: str(volume) if v == vol else v for k, v in final.env().items()}
    return image


def _run(
    image: Installed, args: list[str], extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    environ = _base_environ() | image.env | extra
    return subprocess.run(
        args, cwd=image.root, env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def test_installed_entrypoint_reports_the_version(
    installed: Installed, dockerfile: Dockerfile
) -> None:
    entrypoint = installed.host(dockerfile.entry()[0])
    result = _run(installed, [entrypoint, "--version"], {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mm {__version__}"
    # A regular install: the packages live in the venv (the sources are not in the image).
    python = installed.host(f"{installed.workdir}/.venv/bin/python")
    where = "import mm, supervisors; print(mm.__file__); print(supervisors.__file__)"
    found = _run(installed, [python, "-c", where], {})
    assert found.returncode == 0, found.stderr
    for line in found.stdout.split():
        assert Path(line).is_relative_to(installed.root / ".venv"), line


def test_installed_check_passes_with_the_image_env_and_a_token(
    installed: Installed, dockerfile: Dockerfile
) -> None:
    entry = [installed.host(word) for word in dockerfile.entry()]
    assert entry[1] == "start"
    check = [entry[0], "check", *entry[2:]]
    token_env = CONFIG["admin"]["token_env"]

    refused = _run(installed, check, {})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "token is required" in refused.stdout + refused.stderr

    result = _run(installed, check, {token_env: TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config OK" in result.stdout
    assert f"run_dir   {installed.volume}" in result.stdout
    assert f"admin     0.0.0.0:{CONFIG['admin']['port']} (token: configured)" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def test_installed_service_is_healthy_and_stops_on_the_stop_signal(
    installed: Installed, dockerfile: Dockerfile, services: dict[str, dict[str, Any]]
) -> None:
    entry = [installed.host(word) for word in dockerfile.entry()]
    options, healthcheck = dockerfile.healthcheck()
    port = str(CONFIG["admin"]["port"])
    # Port 0 (any free port) instead of 9400, which another mm on this machine may hold.
    extra = {CONFIG["admin"]["token_env"]: TOKEN, "MM_ADMIN__PORT": "0"}
    log = installed.volume.parent / "mm.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            entry,
            cwd=installed.root,
            env=_base_environ() | installed.env | extra,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + seconds(options["start-period"])
        while (info := read_info(installed.volume)) is None or info.pid != process.pid:
            assert process.poll() is None, f"mm exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no run file:\n{log.read_text()}"
            time.sleep(0.1)
        bound = info.admin_url.rsplit(":", 1)[1].rstrip("/")
        probe = [installed.host(healthcheck[0])] + [
            arg.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{bound}/") for arg in healthcheck[1:]
        ]
        while (health := _run(installed, probe, {})).returncode != 0:
            assert process.poll() is None, f"mm exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"never healthy: {health.stderr}\n{log.read_text()}"
            time.sleep(0.5)

        process.send_signal(signal.Signals[dockerfile.final.one("STOPSIGNAL").args])
        grace = seconds(services["mm"]["stop_grace_period"])
        assert process.wait(timeout=grace) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert _run(installed, probe, {}).returncode != 0, "the healthcheck passes with mm stopped"
    assert (installed.volume / "mm.sqlite3").is_file(), "the journal is not on the volume"
    assert read_info(installed.volume) is None, "the run file was left behind"
