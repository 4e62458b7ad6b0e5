"""What the root module's configuration says, for the ownership classifier: every root-level resource,
data source and module call with the objects it references (``locals`` resolved), the provider
configurations with theirs, and the module calls' sources (local modules are read too, to name the
sources of nested calls).

``read_root_module`` does the file I/O; ``facts_from_hcl`` is pure.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.errors import ConfigError

# Registry and git sources of the common cluster modules (a `//modules/...` suffix and `?ref=` allowed).
CLUSTER_MODULE_SOURCES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(rx, re.I)) for label, rx in (
        ("terraform-aws-modules/eks", r"(^|/)terraform-aws-modules/eks/aws(//|\?|$)"
                                      r"|github\.com[/:]terraform-aws-modules/terraform-aws-eks(\.git)?(//|\?|$)"),
        ("aws-ia/eks-blueprints", r"(^|/)aws-ia/eks-blueprints/aws(//|\?|$)"
                                  r"|github\.com[/:]aws-ia/terraform-aws-eks-blueprints(\.git)?(//|\?|$)"),
        ("terraform-google-modules/kubernetes-engine",
         r"(^|/)terraform-google-modules/kubernetes-engine/google(//|\?|$)"
         r"|github\.com[/:]terraform-google-modules/terraform-google-kubernetes-engine(\.git)?(//|\?|$)"),
        ("cloudposse/eks-cluster", r"(^|/)cloudposse/eks-cluster/aws(//|\?|$)"
                                   r"|github\.com[/:]cloudposse/terraform-aws-eks-cluster(\.git)?(//|\?|$)"),
    ))
# A local module whose directory is named for a cluster: ./modules/eks, ../../eks-cluster, ./gke.
_LOCAL_CLUSTER_DIR = re.compile(r"(^|[/_-])(eks|gke|aks|kubernetes-engine)([/_-]|$)", re.I)
# Candidate references in an expression; kept only when they name a root-level object.
_REF = re.compile(r"(?<![\w.\-])(?:data\.[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*|module\.[A-Za-z_][\w-]*"
                  r"|local\.[A-Za-z_][\w-]*|[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*)")
_MAX_MODULE_DEPTH = 8


@dataclass(frozen=True)
class Entity:
    """A root-level resource, data source or module call, by configuration address."""

    address: str                          # aws_iam_role.cluster, data.aws_eks_cluster.this, module.eks
    refs: tuple[str, ...] = ()            # entity addresses it references (depends_on included)
    source: str | None = None             # module calls only
    workspace_named: bool = False         # its arguments use terraform.workspace
    file: str = ""


@dataclass(frozen=True)
class ProviderConfig:
    key: str                              # kubernetes, helm.blue
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class RootFacts:
    entities: Mapping[str, Entity] = field(default_factory=dict)
    providers: tuple[ProviderConfig, ...] = ()
    # Module call path (``eks``, ``platform.eks``) -> source, for the calls whose source is known.
    module_sources: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def workspace_named(self) -> tuple[str, ...]:
        return tuple(sorted(a for a, e in self.entities.items() if e.workspace_named))


def cluster_module_kind(source: str, extra: Iterable[str] = ()) -> str | None:
    """Why ``source`` is a cluster module (a label), or None. ``extra``: the config's globs."""
    for pattern in extra:
        if fnmatch.fnmatchcase(source, pattern):
            return f"matches terraform.ownership.cluster_modules {pattern!r}"
    for label, rx in CLUSTER_MODULE_SOURCES:
        if rx.search(source):
            return label
    if source.startswith(("./", "../")) and _LOCAL_CLUSTER_DIR.search(source.rstrip("/").rsplit("/", 1)[-1]):
        return "a local cluster module"
    return None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _candidates(value: Any) -> set[str]:
    out: set[str] = set()
    for text in _strings(value):
        out.update(_REF.findall(text))
    return out


def parse_hcl(text: str, where: str) -> dict[str, Any]:
    import hcl2

    opts = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    try:
        data = hcl2.loads(text, serialization_options=opts)
    except Exception as e:  # lark raises several unrelated types
        raise ConfigError(f"cannot parse HCL: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          where=where, hint="run `terraform validate` in that directory") from e
    return data if isinstance(data, dict) else {}


def _blocks(doc: Mapping[str, Any], kind: str) -> Iterable[tuple[str, Any]]:
    for block in doc.get(kind, []) or []:
        if isinstance(block, dict):
            yield from block.items()


def facts_from_hcl(docs: Mapping[str, dict[str, Any]],
                   nested_sources: Mapping[str, str] | None = None) -> RootFacts:
    """Pure part of ``read_root_module``: ``docs`` maps file name -> parsed HCL of the root module."""
    raw: dict[str, tuple[Any, str, str | None]] = {}      # address -> (body, file, source)
    locals_raw: dict[str, Any] = {}
    provider_raw: list[tuple[str, Any]] = []
    for fname, doc in docs.items():
        for rtype, named in _blocks(doc, "resource"):
            for name, body in (named or {}).items():
                raw[f"{rtype}.{name}"] = (body, fname, None)
        for rtype, named in _blocks(doc, "data"):
            for name, body in (named or {}).items():
                raw[f"data.{rtype}.{name}"] = (body, fname, None)
        for name, body in _blocks(doc, "module"):
            body = body or {}
            raw[f"module.{name}"] = (body, fname, str(body.get("source", "")) or None)
        for block in doc.get("locals", []) or []:
            if isinstance(block, dict):
                locals_raw.update(block)
        for ptype, body in _blocks(doc, "provider"):
            body = body or {}
            alias = body.get("alias")
            provider_raw.append((f"{ptype}.{alias}" if alias else ptype, body))
    known = set(raw)

    # local.x -> the entities it references, through other locals (cycles are cut).
    local_refs: dict[str, set[str]] = {}

    def resolve_local(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in local_refs:
            return local_refs[name]
        if name in seen or name not in locals_raw:
            return set()
        out: set[str] = set()
        for c in _candidates(locals_raw[name]):
            if c.startswith("local."):
                out |= resolve_local(c[6:], seen | {name})
            elif c in known:
                out.add(c)
        local_refs[name] = out
        return out

    def refs_of(value: Any, own: str = "") -> tuple[str, ...]:
        out: set[str] = set()
        for c in _candidates(value):
            if c.startswith("local."):
                out |= resolve_local(c[6:])
            elif c in known and c != own:
                out.add(c)
        return tuple(sorted(out))

    entities = {}
    for addr, (body, fname, source) in raw.items():
        args = {k: v for k, v in (body or {}).items() if k != "source"} if source is not None else body
        ws = any("terraform.workspace" in s for s in _strings(body))
        entities[addr] = Entity(addr, refs_of(args, addr), source, ws, fname)
    providers = tuple(ProviderConfig(key, refs_of(body)) for key, body in provider_raw)
    sources = {a[len("module."):]: e.source for a, e in entities.items() if e.source}
    sources.update(nested_sources or {})
    return RootFacts(entities, providers, sources, tuple(sorted(docs)))


def _read_docs(root: Path) -> dict[str, dict[str, Any]]:
    return {str(f): parse_hcl(f.read_text(encoding="utf-8"), str(f)) for f in sorted(root.glob("*.tf"))}


def _nested_sources(root: Path, docs: Mapping[str, dict[str, Any]], prefix: str, depth: int,
                    out: dict[str, str]) -> None:
    """Sources of module calls inside local modules (``platform.eks`` -> its source)."""
    if depth > _MAX_MODULE_DEPTH:
        return
    for doc in docs.values():
        for name, body in _blocks(doc, "module"):
            source = str((body or {}).get("source", ""))
            path = f"{prefix}{name}"
            if prefix:
                out[path] = source
            if source.startswith(("./", "../")) and (root / source).is_dir():
                try:
                    sub = _read_docs(root / source)
                except ConfigError:
                    continue  # an unreadable child only loses nested sources; the root's errors still stop
                _nested_sources(root / source, sub, f"{path}.", depth + 1, out)


def read_root_module(directory: str | Path) -> RootFacts:
    """Parse every ``*.tf`` file of the environment's root module (and the module calls of local modules)."""
    root = Path(directory)
    docs = _read_docs(root) if root.is_dir() else {}
    if not docs:
        raise ConfigError("no *.tf files in the root module", where=str(root),
                          hint="point the environment's terraform directory at its root module")
    nested: dict[str, str] = {}
    _nested_sources(root, docs, "", 0, nested)
    return facts_from_hcl(docs, nested)
