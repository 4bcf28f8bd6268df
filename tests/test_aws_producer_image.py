"""The producer image: its Dockerfile and build context, and the build-and-push command.

There is no Docker engine here, so the Dockerfile is parsed and checked (pinned base, non-root
user, read-only root filesystem, no credentials, the CLI as entrypoint), its build context is
computed from the dockerignore file, the entrypoint's ``--help`` runs in the venv, and
``scripts.push_image`` drives a fake ``docker`` against moto's ECR.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from emr_jobs.core.paths import REPO_ROOT
from scripts import push_image
from scripts.artifacts import project_version
from scripts.push_image import ImageError, Repository

DOCKERFILE = REPO_ROOT / "producer" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / "producer" / "Dockerfile.dockerignore"
REGION = "eu-west-2"


# --- a small Dockerfile parser (the instruction grammar of the Dockerfile reference) ---


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int

    @property
    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form of RUN/CMD/ENTRYPOINT, else None."""
        try:
            parsed = json.loads(self.value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None

    def key_values(self) -> dict[str, str]:
        """ENV/LABEL/ARG ``k=v`` pairs (the legacy ``ENV k v`` form too)."""
        words = shlex.split(self.value)
        if self.keyword in ("ENV", "LABEL") and words and "=" not in words[0]:
            return {words[0]: " ".join(words[1:])}
        return dict(w.split("=", 1) if "=" in w else (w, "") for w in words)


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue  # blank lines, comments and parser directives (# syntax=…)
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        if not re.fullmatch(r"[A-Za-z]+", keyword):
            raise ValueError(f"line {start}: not an instruction: {full!r}")
        instructions.append(Instruction(keyword.upper(), " ".join(value.split()), start))
    if pending:
        raise ValueError("the Dockerfile ends inside a continued line")
    return instructions


KNOWN = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def test_the_parser_reads_continuations_comments_and_exec_forms():
    parsed = parse_dockerfile(
        '# syntax=docker/dockerfile:1\nFROM a:1 AS b\n\nENV A=1 \\\n    # note\n    B="x y"\n'
        'ENTRYPOINT ["p", "-m"]\nRUN echo hi \\\n && true\n'
    )
    assert [(i.keyword, i.line) for i in parsed] == [
        ("FROM", 2),
        ("ENV", 4),
        ("ENTRYPOINT", 7),
        ("RUN", 8),
    ]
    assert parsed[1].key_values() == {"A": "1", "B": "x y"}
    assert parsed[2].json_args == ["p", "-m"]
    assert parsed[3].value == "echo hi && true"
    with pytest.raises(ValueError):
        parse_dockerfile("FROM a \\\n")


def test_the_dockerfile_uses_only_known_instructions(dockerfile):
    assert {i.keyword for i in dockerfile} <= KNOWN
    assert dockerfile[0].keyword == "FROM"


def test_every_stage_starts_from_the_same_pinned_slim_python_311(dockerfile):
    bases = [i.value.split()[0] for i in dockerfile if i.keyword == "FROM"]
    assert len(bases) == 2 and len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", bases[0])
    assert "latest" not in bases[0]


def test_the_image_runs_as_the_non_root_user_of_the_ecs_task(dockerfile):
    users = [i.value for i in final_stage(dockerfile) if i.keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    ecs = (REPO_ROOT / "infra" / "modules" / "ecs" / "main.tf").read_text(encoding="utf-8")
    task_user = re.search(r'\buser\s*=\s*"([^"]+)"', ecs)
    assert task_user is not None and task_user.group(1) == user
    # Nothing after USER needs root (package installs, user creation).
    after = final_stage(dockerfile)[[i.keyword for i in final_stage(dockerfile)].index("USER") :]
    assert not [i for i in after if i.keyword in ("RUN", "ADD", "COPY")]


def test_the_image_works_with_a_read_only_root_filesystem(dockerfile):
    env: dict[str, str] = {}
    for ins in final_stage(dockerfile):
        if ins.keyword == "ENV":
            env.update(ins.key_values())
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # no __pycache__ writes into site-packages
    assert env["HOME"] == "/tmp" and env["TMPDIR"] == "/tmp"  # the only writable mount on ECS
    assert env["PATH"].startswith("/opt/venv/bin:")
    workdirs = [i.value for i in final_stage(dockerfile) if i.keyword == "WORKDIR"]
    assert workdirs[-1] == "/tmp"
    volumes = [i.value for i in dockerfile if i.keyword == "VOLUME"]
    assert all("/tmp" in v for v in volumes)


SECRET_NAMES = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.IGNORECASE
)


def test_no_credentials_are_baked_in(dockerfile):
    for ins in dockerfile:
        if ins.keyword in ("ENV", "ARG", "LABEL"):
            for name in ins.key_values():
                assert not SECRET_NAMES.search(name), f"line {ins.line}: {ins.keyword} {name}"
        if ins.keyword in ("COPY", "ADD"):
            assert not re.search(r"\.aws|credentials|\.env\b|id_rsa|\.pem", ins.value), ins
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)


def test_the_entrypoint_is_the_console_script_declared_in_pyproject(dockerfile):
    (entrypoint,) = [i for i in final_stage(dockerfile) if i.keyword == "ENTRYPOINT"]
    assert entrypoint.json_args == ["smartcity-producer"]
    with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts["smartcity-producer"] == "producer.cli:main"


def test_the_entrypoint_help_runs_in_the_venv():
    cli = Path(sys.executable).parent / "smartcity-producer"
    result = subprocess.run(
        [str(cli), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for flag in (
        "--bootstrap-servers",
        "--auth-mode",
        "--aws-region",
        "--aws-profile",
        "--role-arn",
    ):
        assert flag in result.stdout


def test_the_topics_admin_entrypoint_of_the_ecs_task_runs_in_the_venv():
    """infra/ overrides the entrypoint with ``python -m scripts.topics create``."""
    ecs = (REPO_ROOT / "infra" / "modules" / "ecs" / "main.tf").read_text(encoding="utf-8")
    assert 'entryPoint       = ["python", "-m", "scripts.topics"]' in ecs
    result = subprocess.run(
        [sys.executable, "-m", "scripts.topics", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "create" in result.stdout


# --- the build context ---


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A dockerignore pattern (Go filepath.Match plus ``**``) as a regex on slash paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def build_context(root: Path, ignore_file: Path) -> set[str]:
    """Files docker sends to the builder: the last matching pattern wins; a pattern that matches
    a directory matches everything under it."""
    rules = []
    for raw in ignore_file.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, _pattern_regex(pattern)))
    kept = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", ".cache")]
        for name in filenames:
            path = Path(dirpath, name).relative_to(root).as_posix()
            parts = path.split("/")
            prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
            excluded = False
            for negate, regex in rules:
                if any(regex.fullmatch(p) for p in prefixes):
                    excluded = not negate
            if not excluded:
                kept.add(path)
    return kept


def test_the_build_context_is_the_code_the_image_installs_and_nothing_else(dockerfile):
    context = build_context(REPO_ROOT, DOCKERIGNORE)
    tops = {p.split("/")[0] for p in context}
    assert tops <= {"pyproject.toml", "README.md", "emr_jobs", "producer", "scripts"}
    assert {
        "pyproject.toml",
        "README.md",
        "producer/cli.py",
        "scripts/topics.py",
        "emr_jobs/core/contracts/vehicle.json",
        "scripts/__init__.py",
    } <= context
    assert not [p for p in context if "__pycache__" in p or p.endswith(".pyc")]
    assert "producer/Dockerfile" not in context
    # Package data the producer needs at run time is in the context.
    assert any(p.startswith("producer/data/") and p.endswith(".json") for p in context)
    for ins in dockerfile:
        if ins.keyword == "COPY" and "--from=" not in ins.value:
            for source in shlex.split(ins.value)[:-1]:
                source = source.rstrip("/")
                assert any(p == source or p.startswith(source + "/") for p in context), source


# --- build and push ---


def fake_docker(tmp_path: Path, monkeypatch, *, engine_up: bool = True) -> Path:
    """A ``docker`` on PATH that records each call (and its stdin) in calls.jsonl."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.jsonl"
    script = bin_dir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        f"if args[:1] == ['info'] and not {engine_up}:\n"
        "    print('Cannot connect to the Docker daemon at unix:///var/run/docker.sock.', "
        "file=sys.stderr); sys.exit(1)\n"
        "stdin = sys.stdin.read() if '--password-stdin' in args else None\n"
        f"with open({str(log)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'args': args, 'stdin': stdin}) + '\\n')\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def ecr(fake_aws_credentials):
    with mock_aws():
        client = boto3.client("ecr", region_name=REGION)
        url = client.create_repository(
            repositoryName="smartcity-dev", imageTagMutability="IMMUTABLE"
        )["repository"]["repositoryUri"]
        yield client, url


def test_without_docker_the_command_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no terraform
    assert push_image.main([]) == 2
    assert "docker is not installed (no `docker` on PATH)" in capsys.readouterr().err


def test_without_a_docker_engine_the_command_says_so(monkeypatch, tmp_path, capsys):
    fake_docker(tmp_path, monkeypatch, engine_up=False)
    assert (
        push_image.main(
            ["--repository-url", "123456789012.dkr.ecr.eu-west-2.amazonaws.com/smartcity-dev"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot reach the Docker engine" in err and "Cannot connect to the Docker daemon" in err


def test_build_login_and_push_to_the_repository_of_the_terraform_outputs(
    ecr, tmp_path, monkeypatch, capsys
):
    client, url = ecr
    calls_log = fake_docker(tmp_path, monkeypatch)
    bin_dir = tmp_path / "fake-bin"
    terraform = bin_dir / "terraform"
    terraform.write_text(f"#!/bin/sh\n[ \"$5\" = ecr_repository_url ] && printf '%s' '{url}'\n")
    terraform.chmod(0o755)

    assert push_image.main([]) == 0
    tag = project_version()
    calls = [json.loads(line) for line in calls_log.read_text().splitlines()]
    assert [c["args"][0] for c in calls] == ["info", "build", "login", "push"]
    build = calls[1]["args"]
    assert build[:7] == [
        "build",
        "--file",
        "producer/Dockerfile",
        "--platform",
        "linux/amd64",
        "--tag",
        f"{url}:{tag}",
    ]
    assert build[-1] == "."
    assert f"org.opencontainers.image.version={tag}" in build
    assert calls[2]["args"] == [
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        url.partition("/")[0],
    ]
    assert calls[2]["stdin"] == "123456789012-auth-token"  # moto's ECR password, via stdin only
    assert not any("auth-token" in a for c in calls for a in c["args"])
    assert calls[3]["args"] == ["push", f"{url}:{tag}"]
    out = capsys.readouterr().out
    assert f"pushed {url}:{tag}" in out and f'image_tag = "{tag}"' in out


def test_an_existing_tag_is_refused_before_building(ecr, tmp_path, monkeypatch):
    client, url = ecr
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
    client.put_image(
        repositoryName="smartcity-dev", imageManifest=json.dumps(manifest), imageTag="0.1.0"
    )
    calls_log = fake_docker(tmp_path, monkeypatch)
    with pytest.raises(ImageError, match="already exists.*immutable"):
        push_image.push(client, Repository(url), "0.1.0", docker=str(tmp_path / "fake-bin/docker"))
    assert not calls_log.exists()  # nothing was built
    with pytest.raises(ImageError, match="does not exist; apply infra/"):
        push_image.push(
            client,
            Repository(url.replace("smartcity-dev", "missing")),
            "0.2.0",
            docker=str(tmp_path / "fake-bin/docker"),
        )


def test_repository_urls_are_checked_and_give_their_region():
    repo = Repository("123456789012.dkr.ecr.eu-west-2.amazonaws.com/smartcity-dev")
    assert (repo.registry, repo.name, repo.region) == (
        "123456789012.dkr.ecr.eu-west-2.amazonaws.com",
        "smartcity-dev",
        "eu-west-2",
    )
    with pytest.raises(ImageError, match="not an ECR repository URL"):
        Repository("docker.io/library/python")
