"""The READMEs: every relative link resolves, and the top README stays a short entry point.

The documentation lives beside what it describes (infra/, local/, emr_jobs/, ...); the top
README keeps the pitch, the quick start, the architecture and the guarantees, and links the rest.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from settings_registry import settings_classes

from emr_jobs.core.paths import REPO_ROOT

TOP_README = REPO_ROOT / "README.md"
TOP_README_MAX_LINES = 250
#: The READMEs beside the code, each of which the top README must link.
FOLDER_READMES = (
    "emr_jobs/README.md",
    "emr_jobs/core/contracts/README.md",
    "producer/README.md",
    "local/README.md",
    "infra/README.md",
    "scripts/bench/README.md",
    "scripts/alerts/README.md",
    "scripts/dashboard/README.md",
)

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
#: ``[text](target)`` and ``![alt](target)``; the text may run over several lines.
_INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def readme_files() -> list[Path]:
    """Every README.md in the repository: tracked by git, or new and not ignored."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*README.md"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        listed = [
            p.relative_to(REPO_ROOT).as_posix()
            for p in REPO_ROOT.rglob("README.md")
            if not any(
                part.startswith(".") or part == "node_modules"
                for part in p.relative_to(REPO_ROOT).parts
            )
        ]
    return sorted({REPO_ROOT / name for name in listed if (REPO_ROOT / name).is_file()})


def without_code_blocks(text: str) -> str:
    """``text`` with the lines of fenced code blocks blanked (a ``#`` there is no heading)."""
    lines, fenced = [], None
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fenced:
            if fence and fence.group(1) == fenced:
                fenced = None
            lines.append("")
        elif fence:
            fenced = fence.group(1)
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """``text`` without code blocks and with code spans replaced, so neither yields links."""
    return _CODE_SPAN.sub(lambda m: "code", without_code_blocks(text))


def link_targets(text: str) -> list[str]:
    body = prose(text)
    return _INLINE_LINK.findall(body) + _REFERENCE_LINK.findall(body)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Anchors of a Markdown file's headings; a repeated one gets -1, -2, ... as on GitHub."""
    out: set[str] = set()
    for line in without_code_blocks(path.read_text(encoding="utf-8")).splitlines():
        match = _HEADING.match(line)
        if match:
            base = anchor = slug(match.group(2))
            n = 0
            while anchor in out:
                n += 1
                anchor = f"{base}-{n}"
            out.add(anchor)
    return out


def resolve(readme: Path, target: str) -> tuple[Path, str]:
    """A relative link target -> (the path it names, its #fragment or "")."""
    path, _, fragment = target.partition("#")
    path = unquote(path)
    if not path:
        return readme, fragment
    base = REPO_ROOT if path.startswith("/") else readme.parent
    return (base / path.lstrip("/")).resolve(), fragment


def broken_links(readme: Path) -> list[str]:
    broken = []
    for target in link_targets(readme.read_text(encoding="utf-8")):
        if _SCHEME.match(target):  # https:, mailto: ...: not a file of the repository
            continue
        path, fragment = resolve(readme, target)
        if not path.is_relative_to(REPO_ROOT.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not path.exists():
            broken.append(f"{target}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target}: no heading #{fragment} in {path.relative_to(REPO_ROOT)}")
    return broken


def test_the_readmes_are_found():
    found = {p.relative_to(REPO_ROOT).as_posix() for p in readme_files()}
    assert {"README.md", *FOLDER_READMES} <= found


@pytest.mark.parametrize(
    "readme", readme_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_every_relative_link_of_a_readme_points_to_an_existing_file(readme):
    broken = broken_links(readme)
    assert not broken, f"{readme.relative_to(REPO_ROOT)}: broken links: {broken}"


def test_the_link_checker_sees_links_and_catches_broken_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "README.md").write_text("# Sub\n\n## The job's `Python` packages (EMR)\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Top\n\n## Two words\n\n"
        "[ok](sub/README.md#the-jobs-python-packages-emr), [a\nsplit link](#two-words),\n"
        "![image](sub/), [web](https://example.com/x), `[not a link](nowhere.md)`\n\n"
        "```\n[not a link either](nowhere.md)\n```\n\n"
        "[gone](missing.md) [bad anchor](sub/README.md#nope) [up and out](../../etc/passwd)\n"
    )
    assert broken_links(readme) == [
        "missing.md: no such file",
        "sub/README.md#nope: no heading #nope in sub/README.md",
        "../../etc/passwd: outside the repository",
    ]


def test_the_top_readme_is_short_and_links_every_folder_readme():
    text = TOP_README.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines < TOP_README_MAX_LINES, (
        f"README.md has {lines} lines: move detail into the README of the folder it describes"
    )
    linked = {resolve(TOP_README, t)[0] for t in link_targets(text) if not _SCHEME.match(t)}
    unlinked = [r for r in FOLDER_READMES if (REPO_ROOT / r).resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_the_top_readme_keeps_its_sections_and_the_maven_substitutions():
    text = TOP_README.read_text(encoding="utf-8")
    lines = without_code_blocks(text).splitlines()
    headings = [m.group(2) for m in map(_HEADING.match, lines) if m]
    for heading in (
        "Quick start",
        "Architecture",
        "Guarantees",
        "Versions and substitutions",
        "Where to go next",
    ):
        assert heading in headings, f"README.md has no '{heading}' section"
    assert "make run" in text and "make test" in text
    versions = re.search(r"^## Versions and substitutions\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert versions and "**substitution**" in versions.group(1)


# --- the settings tables ------------------------------------------------------------------------

_ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|", re.M)
_UNSET = {"(unset)", "unset", "(none)", "none", "empty", "(empty)", "", "–", "-"}


def documented_defaults() -> dict[str, str]:
    """Variable -> the default cell of every settings table row (``| `VAR` | default | ...``)."""
    found: dict[str, str] = {}
    for readme in readme_files():
        text = readme.read_text(encoding="utf-8")
        for table in re.split(r"\n(?!\|)", text):
            if table.lstrip("\n").startswith("| variable | default"):
                found.update(_ROW.findall(table))
    return found


def _same(documented: str, default: object) -> bool:
    """Whether a README's default cell says the code's default. A cell with a ``<placeholder>``
    describes a default derived at start-up (the code's is empty, or a factory)."""
    from datetime import datetime

    from pydantic_core import PydanticUndefined

    cell = documented.strip().strip("`").strip()
    if default is None or default == "" or default is PydanticUndefined:
        return cell.lower() in _UNSET or "<" in cell
    if isinstance(default, bool):
        return cell.lower() == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(cell.replace(",", "")) == float(default)
        except ValueError:
            return False
    if isinstance(default, datetime):
        return cell == default.isoformat().replace("+00:00", "Z")
    return cell == str(default)


def test_every_setting_is_documented_with_the_default_the_code_has():
    """The settings classes hold each default once; the READMEs' tables must say the same."""
    documented = documented_defaults()
    missing, wrong = [], []
    for cls in settings_classes():
        for variable, info in cls.variables():
            if variable not in documented:
                missing.append(f"{cls.__name__}: {variable}")
            elif not info.is_required() and not _same(
                documented[variable], info.get_default(call_default_factory=False)
            ):
                wrong.append(f"{variable}: README {documented[variable]!r}, code {info.default!r}")
    assert not missing, f"settings no README table documents: {missing}"
    assert not wrong, f"README defaults that differ from the code: {wrong}"
