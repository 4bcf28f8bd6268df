"""Build the producer image (``producer/Dockerfile``) and push it to the ECR repository.

    python -m scripts.push_image [--repository-url URL] [--tag 0.1.0] [--platform linux/amd64]

The repository defaults to the Terraform output ``ecr_repository_url``; the tag to the project
version in ``pyproject.toml``, which is also the default ``producer.image_tag`` of ``infra/``.
ECR tags are immutable here, so a tag that is already in the repository is refused before
anything is built: bump the version or pass ``--tag``. The ECR password goes to
``docker login --password-stdin``, never onto a command line. Needs a running Docker engine.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from emr_jobs.core.paths import REPO_ROOT
from scripts.artifacts import project_version
from scripts.terraform_outputs import OutputsError, terraform_output

DOCKERFILE = REPO_ROOT / "producer" / "Dockerfile"
DEFAULT_PLATFORM = "linux/amd64"  # infra/ runs the tasks on X86_64 Fargate by default


class ImageError(RuntimeError):
    """The image cannot be built or pushed; the message says why and what to do."""


@dataclass(frozen=True)
class Repository:
    url: str  # <account>.dkr.ecr.<region>.amazonaws.com/<name>

    def __post_init__(self) -> None:
        host, _, name = self.url.partition("/")
        parts = host.split(".")
        if not name or len(parts) < 6 or parts[1:3] != ["dkr", "ecr"]:
            raise ImageError(
                f"not an ECR repository URL: {self.url!r} "
                "(expected <account>.dkr.ecr.<region>.amazonaws.com/<name>)"
            )

    @property
    def registry(self) -> str:
        return self.url.partition("/")[0]

    @property
    def name(self) -> str:
        return self.url.partition("/")[2]

    @property
    def region(self) -> str:
        return self.registry.split(".")[3]

    def image(self, tag: str) -> str:
        return f"{self.url}:{tag}"


def find_docker() -> str:
    """The docker CLI, with a reachable engine; otherwise a clear error."""
    docker = shutil.which("docker")
    if docker is None:
        raise ImageError(
            "docker is not installed (no `docker` on PATH); building the producer image needs "
            "Docker with a running engine (Docker Desktop, or dockerd on Linux)"
        )
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageError("the Docker engine did not answer `docker info` within 30 s") from None
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()
        raise ImageError(
            "cannot reach the Docker engine (`docker info` failed"
            + (f": {detail[-1]}" if detail else "")
            + "); start Docker and try again"
        )
    return docker


def tag_exists(ecr, repository: Repository, tag: str) -> bool:
    try:
        ecr.describe_images(repositoryName=repository.name, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    except ecr.exceptions.RepositoryNotFoundException:
        raise ImageError(
            f"ECR repository {repository.name} does not exist; apply infra/ first"
        ) from None
    return True


def registry_login(ecr) -> tuple[str, str]:
    """(user, password) for ``docker login``, from ``ecr.get_authorization_token``."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return user, password


def build_command(docker: str, image: str, platform: str, revision: str) -> list[str]:
    return [
        docker,
        "build",
        "--file",
        str(DOCKERFILE.relative_to(REPO_ROOT)),
        "--platform",
        platform,
        "--tag",
        image,
        "--label",
        f"org.opencontainers.image.version={image.rpartition(':')[2]}",
        "--label",
        f"org.opencontainers.image.revision={revision}",
        ".",  # the repository root: the image installs producer/, emr_jobs/ and scripts/
    ]


def _git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def push(
    ecr,
    repository: Repository,
    tag: str,
    *,
    platform: str = DEFAULT_PLATFORM,
    docker: str | None = None,
) -> str:
    """Build, log in, push; returns the pushed image reference."""
    docker = docker or find_docker()
    if tag_exists(ecr, repository, tag):
        raise ImageError(
            f"{repository.image(tag)} already exists and the repository's tags are immutable; "
            "bump the version in pyproject.toml or pass --tag"
        )
    image = repository.image(tag)
    _run(build_command(docker, image, platform, _git_revision()), "docker build")
    user, password = registry_login(ecr)
    _run(
        [docker, "login", "--username", user, "--password-stdin", repository.registry],
        "docker login",
        stdin=password,
    )
    _run([docker, "push", image], "docker push")
    return image


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    result = subprocess.run(command, cwd=REPO_ROOT, input=stdin, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"{what} failed with exit code {result.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.push_image", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repository-url", help="[terraform output ecr_repository_url]")
    parser.add_argument("--tag", help="image tag (default: the project version)")
    parser.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        help=f"target platform (default {DEFAULT_PLATFORM}; linux/arm64 for ARM64)",
    )
    args = parser.parse_args(argv)
    try:
        docker = find_docker()
        url = args.repository_url or str(
            terraform_output("ecr_repository_url", flag="--repository-url")
        )
        repository = Repository(url)
        import boto3

        ecr = boto3.client("ecr", region_name=repository.region)
        tag = args.tag or project_version()
        image = push(ecr, repository, tag, platform=args.platform, docker=docker)
    except (ImageError, OutputsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pushed {image}")
    print(
        f'run it: set producer = {{ image_tag = "{tag}", desired_count = 1 }} in '
        "infra/terraform.tfvars, then terraform -chdir=infra apply"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
