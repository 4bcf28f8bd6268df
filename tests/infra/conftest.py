"""The checks of ``infra/`` read it as tfparse (Trivy's Terraform evaluator) evaluates it: modules,
variables, locals, ``for_each``, functions, ``jsondecode(file(...))`` of the contracts. It knows
nothing AWS assigns: ``x.arn``, ``x.id`` or ``x.json`` becomes block x's random ``id``, any other
attribute stays unevaluated, and a template or ``merge`` holding one may turn to null. So, as
``terraform test`` does with ``override_data``/``override_resource``, a copy of ``infra/`` is
evaluated with such values set to realistic ones (EXTERNALS). The source text (argument order,
``moved``/``check`` blocks, validations, dynamic blocks inside blocks, which tfparse drops) is read
with python-hcl2. ``INFRA_UNDER_TEST`` points the checks at another copy (contracts beside it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hcl2
import pytest
import tfparse

REPO = Path(__file__).resolve().parents[2]
INFRA = Path(os.environ.get("INFRA_UNDER_TEST", REPO / "infra")).resolve()
MODULES_DIR = INFRA / "modules"
MODULE_NAMES = ("network", "msk", "s3", "iam", "emr", "ecs", "glue", "observability", "alerts")
NESTED_MODULE_NAMES = ("log_group",)  # called by the concerns: a log group with its own KMS key
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
TF_FILES = sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)

# The values AWS would assign (aws_overrides.py, beside this file; loaded by path because this
# conftest is also loaded by path, by tests/test_glue_catalog.py).
_spec = importlib.util.spec_from_file_location("aws", Path(__file__).with_name("aws_overrides.py"))
aws = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aws)  # type: ignore[union-attr]
FAKE, EXTERNALS = aws.FAKE, aws.EXTERNALS


@cache
def evaluate(source: Path, externals: str, inputs: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(address, block)`` as tfparse evaluates a copy of ``source`` with ``externals`` set."""
    with tempfile.TemporaryDirectory() as tmp:
        copy, contracts = Path(tmp, "infra"), Path("emr_jobs", "core", "contracts")
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(".terraform*"))
        shutil.copytree(source.parent / contracts, Path(tmp, contracts))
        for module, header, attribute in json.loads(externals):
            paths = [p for p in copy.rglob("*.tf") if module in ("*", p.parent.name)]
            paths = [p for p in paths if f"{header} {{" in p.read_text(encoding="utf-8")]
            assert paths, f"EXTERNALS: module {module} has no {header}"
            for path in paths:
                text = path.read_text(encoding="utf-8")
                path.write_text(text.replace(f"{header} {{", f"{header} {{\n{attribute}\n"))
        (copy / "inputs.tfvars.json").write_text(inputs, encoding="utf-8")
        parsed = tfparse.load_from_path(copy, vars_paths=["inputs.tfvars.json"])
    return tuple((b["__tfmeta"]["path"], b) for blocks in parsed.values() for b in blocks)


class Block(dict):
    """A block as tfparse evaluated it; ``blocks(name)``: its nested blocks (one or several)."""

    def blocks(self, name: str) -> list[Block]:
        found = self.get(name) or []
        found = found if isinstance(found, list) else [found]
        return [Block({k: v for k, v in b.items() if k not in ("__tfmeta", "id")}) for b in found]


class Module(dict):
    """The root module (``address=""``) or ``module.<name>.``...: its blocks by address in it."""

    def __init__(self, source=INFRA, externals=EXTERNALS, inputs=None, address="", call=None):
        blocks = evaluate(Path(source), json.dumps(externals), json.dumps(inputs or {}))
        super().__init__((a[len(address) :], Block(b)) for a, b in blocks if a.startswith(address))
        self.locals = {k: v for a, b in blocks if a == f"{address}locals" for k, v in b.items()}
        self.args, self.address, self.call = (source, externals, inputs), address, call or {}

    def child(self, name: str) -> Module:
        address, call = f"{self.address}module.{name}.", self[f"module.{name}"]
        return Module(*self.args, address=address, call=call)

    def local(self, name: str) -> Any:
        return self.locals[name]

    def var(self, name: str) -> Any:
        """What the caller passes, else the default (its optional attributes not filled in)."""
        return self.call.get(name, self[f"variable.{name}"].get("default"))

    def output(self, name: str) -> Any:
        return self[f"output.{name}"]["value"]

    def instances(self, rtype: str, name: str, kind: str = "resource") -> dict[Any, Block]:
        """A block's instances by ``for_each`` key or ``count`` index (None: neither)."""
        base = f"data.{rtype}.{name}" if kind == "data" else f"{rtype}.{name}"
        found = {a[len(base) :]: b for a, b in self.items() if a.split("[")[0] == base}
        return {json.loads(key[1:-1]) if key else None: block for key, block in found.items()}

    def one(self, rtype: str, name: str, kind: str = "resource") -> Block:
        (block,) = self.instances(rtype, name, kind).values()
        return block

    def policy_statements(self, name: str) -> list[Block]:
        """``data.aws_iam_policy_document.<name>``'s statements; every resource must be known."""
        found = []
        for st in self.one("aws_iam_policy_document", name, "data").blocks("statement"):
            st = Block({"sid": None, "effect": "Allow", "resources": [], **st})
            assert all(isinstance(r, str) and r and "${" not in r for r in st["resources"]), st
            st.update(actions=set(st["actions"]), conditions=st.blocks("condition"))
            found.append(st | {"principals": st.blocks("principals")})
        return found


def grants(statements: list[dict[str, Any]], service: str = "") -> dict[str, set[str]]:
    """Action (of ``service``, if given) -> every resource a statement grants it on."""
    found: dict[str, set[str]] = {}
    for st in statements:
        for action in (a for a in st["actions"] if a.startswith(service)):
            found.setdefault(action.removeprefix(service), set()).update(st["resources"])
    return found


@cache
def load_hcl(path: Path) -> dict[str, Any]:
    """One file's source text as python-hcl2 parses it (quotes stripped, no block markers)."""
    with open(path, encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=HCL2)


HCL2 = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, preserve_heredocs=False, strip_string_quotes=True
)


@pytest.fixture(scope="session")
def root() -> Module:
    return Module()  # infra/ with its default variables and EXTERNALS


@pytest.fixture(scope="session")
def modules(root: Module) -> dict[str, Module]:
    return {name: root.child(name) for name in MODULE_NAMES}


@pytest.fixture(scope="session")
def fake() -> SimpleNamespace:
    return FAKE


@pytest.fixture(scope="session")
def tf() -> SimpleNamespace:
    """The helpers, for tests (conftest modules are not imported by name)."""
    names = {k: v for k, v in globals().items() if k.isupper()}
    return SimpleNamespace(**names, files=TF_FILES, load=load_hcl, Module=Module, grants=grants)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``tf_file`` runs a test once per ``.tf`` file, ``module_name`` once per module."""
    if "tf_file" in metafunc.fixturenames:
        ids = [str(p.relative_to(INFRA)) for p in TF_FILES]
        metafunc.parametrize("tf_file", TF_FILES, ids=ids)
    if "module_name" in metafunc.fixturenames:
        metafunc.parametrize("module_name", MODULE_NAMES + NESTED_MODULE_NAMES)
