"""Shared helpers for the static checks of ``infra/``.

No provider can be downloaded here, so ``terraform validate``/``plan`` are out of reach. Instead
the ``.tf`` files are parsed with python-hcl2 and their expressions are *evaluated* by a small
interpreter for the subset of HCL this configuration uses (references, templates, for
expressions, conditionals, the common functions, ``jsondecode(file(...))``). Values only AWS
knows (ARNs, IDs) stay :class:`Unknown` unless a test supplies them as *externals*, for example a
realistic MSK cluster ARN, so a test can check the exact IAM resource ARNs Terraform would build.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES_DIR = INFRA / "modules"
MODULE_NAMES = ("network", "msk", "s3", "iam", "emr", "ecs", "glue", "observability", "alerts")
#: Modules that the concerns call, not the root: a log group with its own KMS key.
NESTED_MODULE_NAMES = ("log_group",)
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True,
    explicit_blocks=False,
    with_comments=False,
    preserve_heredocs=False,
)


class EvalError(Exception):
    """An expression could not be evaluated (unsupported syntax or a bad reference)."""


# ------------------------------------------------------------------------------------------- files


def tf_files() -> list[Path]:
    """Every ``.tf`` file under ``infra/`` (not provider caches)."""
    return sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)


@cache
def load_hcl(path: Path) -> dict[str, Any]:
    """One file parsed by python-hcl2, with string quotes stripped and no block markers."""
    with open(path, encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


def blocks_of(doc: Mapping[str, Any], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(type, name, body)`` of every ``resource``/``data`` block of a parsed file."""
    for entry in doc.get(kind, []):
        for rtype, named in entry.items():
            for name, body in named.items():
                yield rtype, name, body


def named_blocks(doc: Mapping[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, body)`` of every ``variable``/``output``/``module`` block of a parsed file."""
    for entry in doc.get(kind, []):
        yield from entry.items()


# ------------------------------------------------------------------------------------------ values


class Unknown:
    """A value known only after apply (an ARN, an ID): carries the reference it came from."""

    def __init__(self, ref: str) -> None:
        self.ref = ref

    def __repr__(self) -> str:
        return f"Unknown({self.ref})"

    def __str__(self) -> str:
        return "${" + self.ref + "}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)


def render(value: Any) -> str:
    """A value interpolated into a template, as Terraform prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        raise EvalError(f"cannot interpolate a collection: {value!r}")
    if value is None:
        raise EvalError("cannot interpolate null")
    return str(value)


# ------------------------------------------------------------------------------------------ lexing

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
      |(?P<op>=>|==|!=|<=|>=|&&|\|\||\.\.\.|[-+*/%!<>?:.,()\[\]{}=])""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _scan_string(src: str, i: int) -> tuple[str, int]:
    """``src[i]`` opens a quoted string; return its raw content and the index after it."""
    j = i + 1
    while j < len(src):
        if src[j] == "\\":
            j += 2
        elif src[j] == '"':
            return src[i + 1 : j], j + 1
        elif src.startswith("$${", j):
            j += 3
        elif src.startswith("${", j):
            j = _scan_interpolation(src, j + 2)
        else:
            j += 1
    raise EvalError(f"unterminated string in {src!r}")


def _scan_interpolation(src: str, j: int) -> int:
    """``j`` follows ``${``; return the index after the matching ``}``."""
    depth = 1
    while j < len(src):
        char = src[j]
        if char == '"':
            _, j = _scan_string(src, j)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise EvalError(f"unterminated interpolation in {src!r}")


def _split_template(text: str) -> list[tuple[str, str]]:
    """Literal and ``${...}`` parts of a template (``$${`` is a literal ``${``)."""
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    j = 0
    while j < len(text):
        if text.startswith("$${", j):
            buf.append("${")
            j += 3
        elif text.startswith("${", j):
            end = _scan_interpolation(text, j + 2)
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            parts.append(("expr", text[j + 2 : end - 1]))
            j = end
        elif text[j] == "\\" and j + 1 < len(text) and text[j + 1] in _ESCAPES:
            buf.append(_ESCAPES[text[j + 1]])
            j += 2
        else:
            buf.append(text[j])
            j += 1
    if buf:
        parts.append(("lit", "".join(buf)))
    return parts


def _tokenize(src: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(src):
        if src[i] == '"':
            raw, i = _scan_string(src, i)
            tokens.append(("str", raw))
            continue
        match = _TOKEN.match(src, i)
        if not match:
            raise EvalError(f"cannot tokenize {src[i : i + 20]!r} in {src!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        i = match.end()
    tokens.append(("end", ""))
    return tokens


# ----------------------------------------------------------------------------------------- parsing


class _Parser:
    """Recursive-descent parser of an HCL expression into nested tuples."""

    _BINARY = [("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%")]

    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _tokenize(src)
        self.pos = 0

    def parse(self) -> tuple:
        node = self.expr()
        if self.peek()[0] != "end":
            raise EvalError(f"unexpected {self.peek()[1]!r} in {self.src!r}")
        return node

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.pos]
        if value is not None and token[1] != value:
            raise EvalError(f"expected {value!r}, got {token[1]!r} in {self.src!r}")
        self.pos += 1
        return token

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("op", "ident"):
            self.pos += 1
            return True
        return False

    def expr(self) -> tuple:
        cond = self.binary(0)
        if self.accept("?"):
            yes = self.expr()
            self.take(":")
            no = self.expr()
            return ("cond", cond, yes, no)
        return cond

    def binary(self, level: int) -> tuple:
        if level == len(self._BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self._BINARY[level]:
            op = self.take()[1]
            left = ("binop", op, left, self.binary(level + 1))
        return left

    def unary(self) -> tuple:
        if self.peek() in (("op", "!"), ("op", "-")):
            return ("unop", self.take()[1], self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: tuple) -> tuple:
        while True:
            kind, value = self.peek()
            if (kind, value) == ("op", "."):
                self.take()
                if self.accept("*"):
                    return ("splat", node, self.splat_ops())
                name = self.take()
                node = (
                    ("index", node, ("lit", int(name[1])))
                    if name[0] == "num"
                    else ("attr", node, name[1])
                )
            elif (kind, value) == ("op", "["):
                self.take()
                if self.accept("*"):
                    self.take("]")
                    return ("splat", node, self.splat_ops())
                key = self.expr()
                self.take("]")
                node = ("index", node, key)
            else:
                return node

    def splat_ops(self) -> list[tuple]:
        ops: list[tuple] = []
        while True:
            if self.accept("."):
                ops.append(("attr", self.take()[1]))
            elif self.peek() == ("op", "["):
                self.take()
                ops.append(("index", self.expr()))
                self.take("]")
            else:
                return ops

    def primary(self) -> tuple:
        kind, value = self.take()
        if kind == "num":
            return ("lit", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "str":
            return parse_template(value)
        if kind == "ident":
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if self.peek() == ("op", "("):
                return self.call(value)
            return ("ref", value)
        if value == "(":
            inner = self.expr()
            self.take(")")
            return ("paren", inner)
        if value == "[":
            return self.tuple_or_for()
        if value == "{":
            return self.object_or_for()
        raise EvalError(f"unexpected {value!r} in {self.src!r}")

    def call(self, name: str) -> tuple:
        self.take("(")
        args: list[tuple] = []
        expand = False
        while not self.accept(")"):
            args.append(self.expr())
            if self.accept("..."):
                expand = True
            self.accept(",")
        return ("call", name, args, expand)

    def for_header(self) -> tuple[str | None, str, tuple]:
        first = self.take()[1]
        second = None
        if self.accept(","):
            second = self.take()[1]
        self.take("in")
        collection = self.expr()
        self.take(":")
        return (first, second, collection) if second else (None, first, collection)

    def tuple_or_for(self) -> tuple:
        if self.peek() == ("ident", "for"):
            self.take()
            key, val, coll = self.for_header()
            body = self.expr()
            cond = self.expr() if self.accept("if") else None
            self.take("]")
            return ("for_tuple", key, val, coll, body, cond)
        items: list[tuple] = []
        while not self.accept("]"):
            items.append(self.expr())
            self.accept(",")
        return ("tuple", items)

    def object_or_for(self) -> tuple:
        if self.peek() == ("ident", "for"):
            self.take()
            key, val, coll = self.for_header()
            key_body = self.expr()
            self.take("=>")
            val_body = self.expr()
            self.accept("...")
            cond = self.expr() if self.accept("if") else None
            self.take("}")
            return ("for_object", key, val, coll, key_body, val_body, cond)
        items: list[tuple[tuple, tuple]] = []
        while not self.accept("}"):
            key = self.expr()
            if not (self.accept("=") or self.accept(":")):
                raise EvalError(f"expected = in object {self.src!r}")
            items.append((key, self.expr()))
            self.accept(",")
        return ("object", items)


@lru_cache(maxsize=4096)
def parse_expression(src: str) -> tuple:
    return _Parser(src).parse()


@lru_cache(maxsize=4096)
def parse_template(text: str) -> tuple:
    return (
        "tmpl",
        [(k, parse_expression(v) if k == "expr" else v) for k, v in _split_template(text)],
    )


# --------------------------------------------------------------------------------------- functions


def _cidrsubnet(prefix: str, newbits: int, netnum: int) -> str:
    network = ipaddress.ip_network(prefix)
    return str(list(network.subnets(prefixlen_diff=newbits))[netnum])


def _tostring(value: Any) -> str:
    return render(value)


def _replace(text: Any, old: str, new: str) -> Any:
    if isinstance(text, Unknown):
        return Unknown(f"replace({text.ref}, {old!r}, {new!r})")
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return re.sub(old[1:-1], re.sub(r"\$\{?(\d+)\}?", r"\\\1", new), text)
    return text.replace(old, new)


def _fileset(directory: str, pattern: str) -> list[str]:
    if "/" in pattern:
        raise EvalError(f"fileset() patterns with directories are not supported: {pattern!r}")
    return sorted(
        p.name
        for p in Path(directory).iterdir()
        if p.is_file() and fnmatch.fnmatch(p.name, pattern)
    )


def _jsonencode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _one(values: list[Any]) -> Any:
    if len(values) > 1:
        raise EvalError("one() of more than one element")
    return values[0] if values else None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ceil": math.ceil,
    "cidrsubnet": _cidrsubnet,
    "coalesce": lambda *a: next(v for v in a if v is not None and v != ""),
    "concat": lambda *lists: [x for lst in lists for x in lst],
    "contains": lambda lst, v: v in lst,
    "distinct": lambda lst: list(dict.fromkeys(lst)),
    "endswith": lambda s, suffix: s.endswith(suffix),
    "file": lambda p: Path(p).read_text(encoding="utf-8"),
    "fileset": _fileset,
    "filesha256": lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest(),
    "flatten": lambda lst: [
        y for x in lst for y in (FUNCTIONS["flatten"](x) if isinstance(x, list) else [x])
    ],
    "format": lambda fmt, *a: re.sub(r"%[sdv]", "{}", fmt).format(*(render(x) for x in a)),
    "formatlist": lambda fmt, lst: [re.sub(r"%[sdv]", "{}", fmt).format(render(x)) for x in lst],
    "join": lambda sep, lst: sep.join(render(x) for x in lst),
    "jsondecode": json.loads,
    "jsonencode": _jsonencode,
    "keys": lambda m: sorted(m),
    "length": len,
    "lookup": lambda m, k, *d: m[k] if k in m else (d[0] if d else None),
    "lower": str.lower,
    "max": max,
    "merge": lambda *maps: {k: v for m in maps if m for k, v in m.items()},
    "min": min,
    "one": _one,
    "range": lambda *a: list(range(*(int(x) for x in a))),
    "replace": _replace,
    "slice": lambda lst, start, end: lst[start:end],
    "sort": sorted,
    "split": lambda sep, s: s.split(sep),
    "startswith": lambda s, prefix: s.startswith(prefix),
    "substr": lambda s, offset, length: s[offset:] if length == -1 else s[offset : offset + length],
    "tolist": list,
    "tomap": dict,
    "tonumber": lambda v: float(v) if "." in str(v) else int(v),
    "toset": lambda lst: sorted(set(lst), key=str),
    "tostring": _tostring,
    "trimprefix": lambda s, p: s[len(p) :] if s.startswith(p) else s,
    "trimsuffix": lambda s, p: s[: -len(p)] if p and s.endswith(p) else s,
    "upper": str.upper,
    "values": lambda m: [m[k] for k in sorted(m)],
    "zipmap": lambda ks, vs: dict(zip(ks, vs, strict=True)),
}


# ----------------------------------------------------------------------------------------- modules


class Instance:
    """One instance of a block (a resource, a ``for_each`` element, a nested or dynamic block)."""

    def __init__(
        self, module: Module, body: Mapping[str, Any], scope: Mapping[str, Any], key: Any = None
    ):
        self.module = module
        self.body = body
        self.scope = dict(scope)
        self.key = key

    def __contains__(self, attr: str) -> bool:
        return attr in self.body

    def __getitem__(self, attr: str) -> Any:
        return self.module.eval(self.body[attr], self.scope)

    def get(self, attr: str, default: Any = None) -> Any:
        return self[attr] if attr in self.body else default

    def blocks(self, name: str) -> list[Instance]:
        """Nested ``name`` blocks, with ``dynamic "name"`` blocks expanded."""
        found = [
            Instance(self.module, b, self.scope)
            for b in _as_list(self.body.get(name))
            if isinstance(b, dict)
        ]
        for dynamic in _as_list(self.body.get("dynamic")):
            if name not in dynamic:
                continue
            spec = dynamic[name]
            iterator = (
                self.module.eval(spec["iterator"], self.scope) if "iterator" in spec else name
            )
            for key, value in _items(self.module.eval(spec["for_each"], self.scope)):
                scope = {**self.scope, iterator: {"key": key, "value": value}}
                for content in _as_list(spec["content"]):
                    found.append(Instance(self.module, content, scope, key))
        return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _items(collection: Any) -> list[tuple[Any, Any]]:
    """``for_each``/``for`` iteration: maps by sorted key, sets by value, lists by index."""
    if isinstance(collection, dict):
        return [(k, collection[k]) for k in sorted(collection)]
    if isinstance(collection, list):
        return list(enumerate(collection))
    raise EvalError(f"cannot iterate over {collection!r}")


class Module:
    """A Terraform module directory whose expressions can be evaluated.

    ``inputs`` are the caller's evaluated arguments; ``externals`` maps a reference (for example
    ``data.aws_region.current.region`` or ``module.msk.aws_msk_cluster.this.arn``) to the value
    a test wants it to have. Anything else only AWS knows evaluates to :class:`Unknown`.
    """

    META_ARGUMENTS = ("source", "version", "providers", "depends_on", "count", "for_each")

    def __init__(
        self,
        directory: Path,
        inputs: Mapping[str, Any] | None = None,
        externals: Mapping[str, Any] | None = None,
        address: str = "",
        parent: Module | None = None,
        call: Mapping[str, Any] | None = None,
    ) -> None:
        self.dir = Path(directory).resolve()
        self.inputs = dict(inputs or {})
        # Arguments of the caller's module block, evaluated in the caller only when read.
        self.parent = parent
        self.call = {k: v for k, v in (call or {}).items() if k not in self.META_ARGUMENTS}
        self._input_values: dict[str, Any] = {}
        self.externals = dict(externals or {})
        self.address = address
        self.variables: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.module_calls: dict[str, dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(self.dir.glob("*.tf")):
            doc = load_hcl(path)
            self.variables.update(named_blocks(doc, "variable"))
            self.outputs.update(named_blocks(doc, "output"))
            self.module_calls.update(named_blocks(doc, "module"))
            for entry in doc.get("locals", []):
                self.locals.update(entry)
            self.resources.update(((t, n), b) for t, n, b in blocks_of(doc, "resource"))
            self.data.update(((t, n), b) for t, n, b in blocks_of(doc, "data"))
        self._local_values: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self._children: dict[str, Module] = {}

    def __repr__(self) -> str:
        return f"Module({self.address or 'root'}: {self.dir})"

    # -- named values

    def var(self, name: str) -> Any:
        if name not in self.variables:
            raise EvalError(f"{self!r} has no variable {name!r}")
        block = self.variables[name]
        if name in self.inputs:
            value = self.inputs[name]
        elif name in self.call and self.parent is not None:
            if name not in self._input_values:
                self._input_values[name] = self.parent.eval(self.call[name])
            value = self._input_values[name]
        else:
            value = self.eval(block.get("default"))
        if value is None and block.get("nullable") is False:
            value = self.eval(block.get("default"))
        if "type" in block and isinstance(block["type"], str):
            value = self._apply_type(parse_template(block["type"])[1][0][1], value)
        return value

    def local(self, name: str) -> Any:
        if name in self._local_values:
            return self._local_values[name]
        if name not in self.locals:
            raise EvalError(f"{self!r} has no local {name!r}")
        if name in self._evaluating:
            raise EvalError(f"local.{name} refers to itself in {self!r}")
        self._evaluating.add(name)
        try:
            value = self.eval(self.locals[name])
        finally:
            self._evaluating.discard(name)
        self._local_values[name] = value
        return value

    def output(self, name: str) -> Any:
        if name not in self.outputs:
            raise EvalError(f"{self!r} has no output {name!r}")
        return self.eval(self.outputs[name]["value"])

    def child(self, name: str) -> Module:
        """The module called ``name``, with the caller's arguments evaluated as its inputs."""
        if name not in self._children:
            call = self.module_calls[name]
            prefix = f"module.{name}."
            externals = {
                k[len(prefix) :]: v for k, v in self.externals.items() if k.startswith(prefix)
            }
            externals.update({k: v for k, v in self.externals.items() if k.startswith("data.")})
            self._children[name] = Module(
                self.dir / call["source"],
                externals=externals,
                address=f"module.{name}",
                parent=self,
                call=call,
            )
        return self._children[name]

    # -- blocks

    def resource(self, rtype: str, name: str, kind: str = "resource") -> dict[str, Any]:
        table = self.resources if kind == "resource" else self.data
        if (rtype, name) not in table:
            raise EvalError(f"{self!r} has no {kind} {rtype}.{name}")
        return table[(rtype, name)]

    def instances(self, rtype: str, name: str, kind: str = "resource") -> dict[Any, Instance]:
        """Every instance of a resource or data block, keyed like Terraform keys them."""
        body = self.resource(rtype, name, kind)
        if "for_each" in body:
            collection = self.eval(body["for_each"])
            pairs = (
                [(v, v) for v in collection] if isinstance(collection, list) else _items(collection)
            )
            return {k: Instance(self, body, {"each": {"key": k, "value": v}}, k) for k, v in pairs}
        if "count" in body:
            return {
                i: Instance(self, body, {"count": {"index": i}}, i)
                for i in range(int(self.eval(body["count"])))
            }
        return {None: Instance(self, body, {})}

    def one(self, rtype: str, name: str, kind: str = "resource") -> Instance:
        instances = self.instances(rtype, name, kind)
        if list(instances) != [None]:
            raise EvalError(f"{rtype}.{name} has several instances: {list(instances)}")
        return instances[None]

    def policy_statements(self, name: str) -> list[dict[str, Any]]:
        """Statements of ``data.aws_iam_policy_document.<name>``, evaluated."""
        document = self.one("aws_iam_policy_document", name, kind="data")
        statements = []
        for st in document.blocks("statement"):
            statements.append(
                {
                    "sid": st.get("sid"),
                    "effect": st.get("effect", "Allow"),
                    "actions": set(st.get("actions", [])),
                    "resources": st.get("resources", []),
                    "conditions": [
                        {"test": c["test"], "variable": c["variable"], "values": c["values"]}
                        for c in st.blocks("condition")
                    ],
                    "principals": [
                        {"type": p["type"], "identifiers": p["identifiers"]}
                        for p in st.blocks("principals")
                    ],
                }
            )
        return statements

    # -- evaluation

    def eval(self, value: Any, scope: Mapping[str, Any] | None = None) -> Any:
        """Evaluate a value as python-hcl2 returned it (a template string, list, map, number)."""
        scope = scope or {}
        if isinstance(value, str):
            return self._eval_node(parse_template(value), scope)
        if isinstance(value, list):
            return [self.eval(v, scope) for v in value]
        if isinstance(value, dict):
            return {
                render(self.eval(k, scope)) if "${" in k else k: self.eval(v, scope)
                for k, v in value.items()
            }
        return value

    def expr(self, source: str, scope: Mapping[str, Any] | None = None) -> Any:
        """Evaluate HCL expression source, for example ``"local.topics"``."""
        return self._eval_node(parse_expression(source), scope or {})

    def _eval_node(self, node: tuple, scope: Mapping[str, Any]) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "paren":
            return self._eval_node(node[1], scope)
        if kind == "tmpl":
            parts = node[1]
            if len(parts) == 1 and parts[0][0] == "expr":
                return self._eval_node(parts[0][1], scope)
            return "".join(v if k == "lit" else render(self._eval_node(v, scope)) for k, v in parts)
        if kind == "ref":
            return self._ref(node[1], scope)
        if kind == "attr":
            return self._attr(self._eval_node(node[1], scope), node[2])
        if kind == "index":
            return self._index(self._eval_node(node[1], scope), self._eval_node(node[2], scope))
        if kind == "splat":
            base = self._eval_node(node[1], scope)
            items = base if isinstance(base, list) else ([] if base is None else [base])
            out = []
            for item in items:
                for op in node[2]:
                    item = (
                        self._attr(item, op[1])
                        if op[0] == "attr"
                        else self._index(item, self._eval_node(op[1], scope))
                    )
                out.append(item)
            return out
        if kind == "tuple":
            return [self._eval_node(n, scope) for n in node[1]]
        if kind == "object":
            out = {}
            for key_node, value_node in node[1]:
                key = (
                    key_node[1]
                    if key_node[0] == "ref"
                    else render(self._eval_node(key_node, scope))
                )
                out[key] = self._eval_node(value_node, scope)
            return out
        if kind in ("for_tuple", "for_object"):
            return self._for(node, scope)
        if kind == "cond":
            test = self._eval_node(node[1], scope)
            if isinstance(test, Unknown):
                return Unknown(f"({test.ref} ? ... : ...)")
            return self._eval_node(node[2] if test else node[3], scope)
        if kind == "unop":
            operand = self._eval_node(node[2], scope)
            if isinstance(operand, Unknown):
                return operand
            return (not operand) if node[1] == "!" else -operand
        if kind == "binop":
            return self._binop(
                node[1], self._eval_node(node[2], scope), self._eval_node(node[3], scope)
            )
        if kind == "call":
            return self._call(node, scope)
        raise EvalError(f"unsupported node {node!r}")

    def _ref(self, name: str, scope: Mapping[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if name in ("var", "local", "module", "path"):
            return _Namespace(self, name)
        if name in ("each", "count", "self"):
            raise EvalError(f"{name} used outside a block that defines it in {self!r}")
        return self._unknown(name)

    def _unknown(self, ref: str) -> Any:
        return self.externals.get(ref, Unknown(ref))

    def _attr(self, obj: Any, name: str) -> Any:
        if isinstance(obj, _Namespace):
            return obj.get(name)
        if isinstance(obj, Unknown):
            return self._unknown(f"{obj.ref}.{name}")
        if isinstance(obj, dict):
            if name not in obj:
                raise EvalError(f"no attribute {name!r} in {sorted(obj)} ({self!r})")
            return obj[name]
        raise EvalError(f"cannot read .{name} of {obj!r} ({self!r})")

    def _index(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, Unknown):
            shown = f'"{key}"' if isinstance(key, str) else render(key)
            return self._unknown(f"{obj.ref}[{shown}]")
        if isinstance(key, Unknown):
            return key
        if isinstance(obj, list):
            return obj[int(key)]
        if isinstance(obj, dict):
            if key not in obj:
                raise EvalError(f"no key {key!r} in {sorted(obj)} ({self!r})")
            return obj[key]
        raise EvalError(f"cannot index {obj!r} with {key!r}")

    def _for(self, node: tuple, scope: Mapping[str, Any]) -> Any:
        if node[0] == "for_tuple":
            _, key_name, value_name, coll, body, cond = node
        else:
            _, key_name, value_name, coll, key_body, body, cond = node
        collection = self._eval_node(coll, scope)
        if isinstance(collection, Unknown):
            return Unknown(f"for over {collection.ref}")
        results_list, results_map = [], {}
        for key, value in _items(collection):
            inner = dict(scope)
            inner[value_name] = value
            if key_name:
                inner[key_name] = key
            if cond is not None and not self._eval_node(cond, inner):
                continue
            if node[0] == "for_tuple":
                results_list.append(self._eval_node(body, inner))
            else:
                results_map[render(self._eval_node(key_body, inner))] = self._eval_node(body, inner)
        return results_list if node[0] == "for_tuple" else results_map

    def _binop(self, op: str, left: Any, right: Any) -> Any:
        if isinstance(left, Unknown) or isinstance(right, Unknown):
            return Unknown(f"({left} {op} {right})")
        operations: dict[str, Callable[[Any, Any], Any]] = {
            "||": lambda a, b: a or b,
            "&&": lambda a, b: a and b,
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b,
            "%": lambda a, b: a % b,
        }
        return operations[op](left, right)

    def _call(self, node: tuple, scope: Mapping[str, Any]) -> Any:
        _, name, arg_nodes, expand = node
        if name in ("try", "can"):
            for arg in arg_nodes:
                try:
                    value = self._eval_node(arg, scope)
                except (EvalError, KeyError, IndexError, TypeError, ValueError):
                    continue
                return True if name == "can" else value
            if name == "can":
                return False
            raise EvalError(f"no argument of try() succeeded in {self!r}")
        args = [self._eval_node(a, scope) for a in arg_nodes]
        if expand:
            args = args[:-1] + list(args[-1])
        if name not in FUNCTIONS:
            raise EvalError(f"function {name}() is not supported by the test evaluator")
        if any(isinstance(a, Unknown) for a in args) and name != "replace":
            return Unknown(f"{name}({', '.join(map(str, args))})")
        return FUNCTIONS[name](*args)

    def _apply_type(self, type_node: tuple, value: Any) -> Any:
        """Fill ``optional(type, default)`` attributes of object types, as Terraform does."""
        if value is None or isinstance(value, Unknown) or type_node[0] != "call":
            return value
        name, args = type_node[1], type_node[2]
        if name == "optional":
            return self._apply_type(args[0], value)
        if name == "object" and args and args[0][0] == "object" and isinstance(value, dict):
            result = dict(value)
            for key_node, attr_type in args[0][1]:
                attr = key_node[1]
                if attr in result and result[attr] is not None:
                    result[attr] = self._apply_type(attr_type, result[attr])
                elif (
                    attr_type[0] == "call" and attr_type[1] == "optional" and len(attr_type[2]) > 1
                ):
                    result[attr] = self._apply_type(
                        attr_type[2][0], self._eval_node(attr_type[2][1], {})
                    )
                else:
                    result.setdefault(attr, None)
            return result
        if name in ("map",) and isinstance(value, dict):
            return {k: self._apply_type(args[0], v) for k, v in value.items()}
        if name in ("list", "set") and isinstance(value, list):
            return [self._apply_type(args[0], v) for v in value]
        return value


class _Namespace:
    """``var``, ``local``, ``module``, ``path`` and ``module.<name>``: attribute lookups."""

    def __init__(self, module: Module, kind: str, child: str = "") -> None:
        self.module = module
        self.kind = kind
        self.child = child

    def get(self, name: str) -> Any:
        if self.kind == "var":
            return self.module.var(name)
        if self.kind == "local":
            return self.module.local(name)
        if self.kind == "path":
            return {"module": str(self.module.dir), "root": str(INFRA), "cwd": str(INFRA)}[name]
        if self.kind == "module":
            return _Namespace(self.module, "module_outputs", name)
        # module.<child>.<output>
        key = f"module.{self.child}.{name}"
        if key in self.module.externals:
            return self.module.externals[key]
        return self.module.child(self.child).output(name)


# ---------------------------------------------------------------------------------------- fixtures

#: Values AWS would assign, so the tests can check the exact ARNs Terraform builds from them.
FAKE_ACCOUNT = "123456789012"
FAKE_REGION = "eu-west-2"
FAKE_MSK_CLUSTER_ARN = (
    f"arn:aws:kafka:{FAKE_REGION}:{FAKE_ACCOUNT}:cluster/smartcity-dev/"
    "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-3"
)
FAKE_BUCKETS = {b: f"smartcity-dev-{b}-bucket" for b in ("lake", "artifacts", "logs")}
#: The alert path's ARNs (modules/alerts and the forwarder's role in modules/iam).
FAKE_ALERTS = {
    "sns_topic_arn": f"arn:aws:sns:{FAKE_REGION}:{FAKE_ACCOUNT}:smartcity-dev-alerts",
    "ledger_table_name": "smartcity-dev-alert-ledger",
    "ledger_table_arn": (
        f"arn:aws:dynamodb:{FAKE_REGION}:{FAKE_ACCOUNT}:table/smartcity-dev-alert-ledger"
    ),
    "kms_key_arn": (
        f"arn:aws:kms:{FAKE_REGION}:{FAKE_ACCOUNT}:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    ),
    "forwarder_role_arn": f"arn:aws:iam::{FAKE_ACCOUNT}:role/smartcity-dev-ecs-alert-forwarder",
}

EXTERNALS: dict[str, Any] = {
    "data.aws_partition.current.partition": "aws",
    "data.aws_region.current.region": FAKE_REGION,
    "data.aws_caller_identity.current.account_id": FAKE_ACCOUNT,
    "data.aws_availability_zones.this.names": [f"{FAKE_REGION}{z}" for z in "abc"],
    "module.msk.aws_msk_cluster.this.arn": FAKE_MSK_CLUSTER_ARN,
    **{
        f'module.s3.aws_s3_bucket.this["{b}"].arn': f"arn:aws:s3:::{n}"
        for b, n in FAKE_BUCKETS.items()
    },
    **{f'module.s3.aws_s3_bucket.this["{b}"].id': n for b, n in FAKE_BUCKETS.items()},
    "module.alerts.aws_sns_topic.this.arn": FAKE_ALERTS["sns_topic_arn"],
    "module.alerts.aws_dynamodb_table.this.name": FAKE_ALERTS["ledger_table_name"],
    "module.alerts.aws_dynamodb_table.this.arn": FAKE_ALERTS["ledger_table_arn"],
    "module.alerts.aws_kms_key.this.arn": FAKE_ALERTS["kms_key_arn"],
    "module.iam.aws_iam_role.ecs_alert_forwarder.arn": FAKE_ALERTS["forwarder_role_arn"],
}


@pytest.fixture(scope="session")
def root() -> Module:
    """The root configuration of ``infra/`` with default variables and fake AWS-assigned values."""
    return Module(INFRA, externals=EXTERNALS)


@pytest.fixture(scope="session")
def modules(root: Module) -> dict[str, Module]:
    """Each module as the root calls it: its inputs are the root's evaluated arguments."""
    return {name: root.child(name) for name in MODULE_NAMES}


@pytest.fixture(scope="session")
def fake() -> Any:
    """The AWS-assigned values the root evaluation uses (see EXTERNALS)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        account=FAKE_ACCOUNT,
        region=FAKE_REGION,
        msk_cluster_arn=FAKE_MSK_CLUSTER_ARN,
        bucket_arns={b: f"arn:aws:s3:::{n}" for b, n in FAKE_BUCKETS.items()},
        bucket_names=dict(FAKE_BUCKETS),
        alerts=dict(FAKE_ALERTS),
    )


@pytest.fixture(scope="session")
def tf() -> Any:
    """The parse helpers, for tests (conftest modules are not imported by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        REPO=REPO,
        INFRA=INFRA,
        MODULES_DIR=MODULES_DIR,
        MODULE_NAMES=MODULE_NAMES,
        NESTED_MODULE_NAMES=NESTED_MODULE_NAMES,
        MODULE_FILES=MODULE_FILES,
        files=tf_files(),
        load=load_hcl,
        blocks_of=blocks_of,
        named_blocks=named_blocks,
        Module=Module,
        Unknown=Unknown,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``tf_file`` runs a test once per ``.tf`` file, ``module_name`` once per module."""
    if "tf_file" in metafunc.fixturenames:
        files = tf_files()
        metafunc.parametrize("tf_file", files, ids=[str(p.relative_to(INFRA)) for p in files])
    if "module_name" in metafunc.fixturenames:
        metafunc.parametrize("module_name", MODULE_NAMES + NESTED_MODULE_NAMES)
