"""migrate.yaml: the environments and how each is migrated.

The models are strict (unknown keys are errors) because a typo in a traffic
threshold must not silently fall back to a default in prod. Every error names
the file and the field path, e.g. ``migrate.yaml: environments.prod.traffic.steps[2]``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from migrate.errors import ConfigError

DEFAULT_CONFIG = "migrate.yaml"
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """'30s', '5m', '1.5h', or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30s' or '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '5m' or '2h'")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- cloud -----------------------------------------------------------------


class AwsTarget(_Model):
    region: str
    account_id: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None  # set for the sandbox's moto server


class GcpTarget(_Model):
    project: str
    location: str
    endpoint: str | None = None  # set for the sandbox's GKE emulator


# --- terraform -------------------------------------------------------------


class Backend(_Model):
    type: Literal["local", "s3", "gcs"]
    # local
    path: str | None = None
    # s3
    bucket: str | None = None
    key: str | None = None
    region: str | None = None
    dynamodb_table: str | None = None
    use_lockfile: bool = False
    workspace_key_prefix: str = "env:"
    endpoint_url: str | None = None
    # gcs
    prefix: str | None = None

    @model_validator(mode="after")
    def _required_per_type(self) -> Backend:
        need = {"s3": ("bucket", "key"), "gcs": ("bucket",), "local": ()}[self.type]
        missing = [name for name in need if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"a {self.type} backend needs {', '.join(missing)}")
        return self


class Ownership(_Model):
    """Overrides of the automatic cluster/shared classification of state addresses."""

    cluster: list[str] = []
    shared: list[str] = []
    # Globs of module sources that hold a cluster, beyond the known ones (docs/terraform.md).
    cluster_modules: list[str] = []


class TerraformGate(_Model):
    """What the copy's plan may do to objects the old workspace still owns."""

    # Addresses or globs whose in-place updates are accepted (a tag naming the old cluster, for instance).
    allow_update: list[str] = []


class Terraform(_Model):
    root: str
    backend: Backend
    workspace: str
    new_workspace: str
    variables: dict[str, Any] = {}
    # Overrides of `variables` for the old workspace's destroy at decommission (provisioner: terraform).
    old_variables: dict[str, Any] = {}
    ownership: Ownership = Ownership()
    gate: TerraformGate = TerraformGate()

    @field_validator("workspace", "new_workspace")
    @classmethod
    def _workspace_name(cls, v: str) -> str:
        # Terraform requires URL-path-safe workspace names.
        if not v or "/" in v or v != v.strip():
            raise ValueError(f"workspace name {v!r} must be non-empty and contain no '/' or spaces")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> Terraform:
        if self.workspace == self.new_workspace:
            raise ValueError("new_workspace must differ from workspace")
        return self


# --- clusters --------------------------------------------------------------


class NodeGroup(_Model):
    name: str
    instance_types: list[str] = ["m5.large"]
    min_size: int = Field(1, ge=0)
    max_size: int = Field(3, ge=1)
    desired_size: int = Field(2, ge=0)
    node_role_arn: str | None = None  # default: the old cluster's node role
    subnet_ids: list[str] | None = None  # default: the cluster's subnets
    labels: dict[str, str] = {}

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"node group {self.name}: need min_size <= desired_size <= max_size")
        return self


class EksSettings(_Model):
    """Settings of the new EKS cluster. Anything left out is copied from the old cluster."""

    role_arn: str | None = None
    subnet_ids: list[str] | None = None
    security_group_ids: list[str] | None = None
    endpoint_public_access: bool | None = None
    endpoint_private_access: bool | None = None
    encryption_key_arn: str | None = None
    nodegroups: list[NodeGroup] | None = None
    addons: list[str] | None = None
    oidc: bool = True
    tags: dict[str, str] = {}


class NodePool(_Model):
    name: str
    machine_type: str = "e2-standard-4"
    node_count: int = Field(2, ge=0)


class GkeSettings(_Model):
    """Settings of the new GKE cluster. Anything left out is copied from the old cluster."""

    network: str | None = None
    subnetwork: str | None = None
    node_pools: list[NodePool] | None = None
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] | None = None
    labels: dict[str, str] = {}


class Cluster(_Model):
    name: str
    version: str | None = None
    kubeconfig_context: str | None = None
    eks: EksSettings | None = None
    gke: GkeSettings | None = None
    ready_timeout: Duration = 1800.0


class Clusters(_Model):
    old: Cluster
    new: Cluster

    @model_validator(mode="after")
    def _distinct(self) -> Clusters:
        if self.old.name == self.new.name:
            raise ValueError("the new cluster needs a name different from the old one")
        return self


# --- replay ----------------------------------------------------------------


class Selection(_Model):
    include: list[str] = []
    exclude: list[str] = []


class Transform(_Model):
    """One declarative rule; exactly one action field is set."""

    name: str | None = None
    match: dict[str, str] = {}  # kind / namespace / name
    registry: dict[str, str] | None = None  # {"from": ..., "to": ...}
    storage_class: dict[str, str] | None = None  # old -> new
    set_annotations: dict[str, str] | None = None
    remove_annotations: list[str] | None = None
    set_labels: dict[str, str] | None = None
    remove_labels: list[str] | None = None
    role_arn: dict[str, str] | None = None  # old ARN -> new ARN
    cluster_name: bool | None = None  # substitute old cluster name with new
    replicas: Literal["copy-current"] | None = None
    json_patch: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Transform:
        actions = [
            k
            for k in (
                "registry",
                "storage_class",
                "set_annotations",
                "remove_annotations",
                "set_labels",
                "remove_labels",
                "role_arn",
                "cluster_name",
                "replicas",
                "json_patch",
            )
            if getattr(self, k) is not None
        ]
        if len(actions) != 1:
            raise ValueError(
                "a transform needs exactly one action (registry, storage_class, set_annotations, "
                "remove_annotations, set_labels, remove_labels, role_arn, cluster_name, replicas, "
                f"json_patch); found {actions or 'none'}"
            )
        return self


# Client-side writes per second against a cluster's API: velero's server default, safe for managed control planes.
DEFAULT_REPLAY_QPS = 100.0


VOLUME_STRATEGIES = ("snapshot", "csi-snapshot", "shared", "fresh")


class VolumeMatch(_Model):
    """Globs on the claim: every given field must match."""

    namespace: str = "*"
    name: str = "*"
    storage_class: str = "*"


class VolumeRule(_Model):
    match: VolumeMatch = VolumeMatch()
    strategy: Literal["snapshot", "csi-snapshot", "shared", "fresh"]
    # Run on this machine just before the old writer is scaled to 0 (e.g. kubectl exec … redis-cli BGSAVE).
    pre_freeze: list[str] = []
    pre_freeze_timeout: Duration = 120.0


class WriteProbe(_Model):
    """Keys written through the entry point from the warm-up snapshot to the report, then read back from the
    new cluster: the proof that no acknowledged write was lost. Point it at a path whose PUT stores the body
    under the key and whose GET answers it (the body, or a JSON object's ``value``)."""

    path: str = Field(pattern=r"^/")  # the collection: PUT <entry point><path><key>
    prefix: str = Field("migrate-probe-", pattern=r"^[A-Za-z0-9._-]+$")
    rate: float = Field(10.0, gt=0, le=200)  # writes per second
    timeout: Duration = 2.0


class Volumes(_Model):
    """How each bound claim's data reaches the new cluster. The first matching rule wins; a bound claim that
    no rule matches is a plan error, so that no data is lost by default."""

    rules: list[VolumeRule] = []
    zone_map: dict[str, str] = {}  # old zone -> zone of the new cluster, where the new cluster lacks the old one
    # The new cluster's region, when it is not aws.region (a region change): each snapshot is copied there
    # (CopySnapshot) before it is restored.
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    snapshot_timeout: Duration = 900.0
    ready_timeout: Duration = 600.0
    write_probe: WriteProbe | None = None


class Replay(_Model):
    namespaces: Selection = Selection()
    kinds: Selection = Selection()
    labels: Selection = Selection()
    include_system_namespaces: bool = False
    transforms: list[Transform] = []
    concurrency: int = Field(8, ge=1, le=256)
    qps: float = Field(DEFAULT_REPLAY_QPS, gt=0, le=10000)  # concurrency bounds in-flight writes
    ready_timeout: Duration = 600.0
    volumes: Volumes = Volumes()


# --- gateway and validation ------------------------------------------------


class Gateway(_Model):
    enabled: bool = True
    name: str | None = None
    region: str | None = None  # AWS region of the gateway when the environment is not on AWS (GKE)
    url: str | None = None  # an alternative entry point to the new cluster; no HTTP API is created then


class SmokeCheck(_Model):
    name: str | None = None
    method: str = "GET"
    path: str
    host: str | None = None
    headers: dict[str, str] = {}
    expect_status: int = Field(200, ge=100, le=599)
    body_contains: str | None = None
    json_path: dict[str, Any] = {}


class LatencyCheck(_Model):
    requests: int = Field(50, ge=1, le=100000)
    max_ratio: float = Field(1.5, gt=0)
    path: str = "/"


class DiffCheck(_Model):
    requests: int = Field(20, ge=1, le=100000)
    paths: list[str] = ["/"]
    max_diff_rate: float = Field(0.0, ge=0, le=1)
    ignore: list[str] = []  # field paths (e.g. "cluster", "meta.request_id") known to differ by design


class Suite(_Model):
    name: str
    path: str
    args: list[str] = []
    timeout: Duration = 600.0


class Validation(_Model):
    smoke: list[SmokeCheck] = []
    latency: LatencyCheck | None = None
    diff: DiffCheck | None = None
    suites: list[Suite] = []
    health: bool = True  # cluster health and workload parity checks
    request_timeout: Duration = 5.0


# --- traffic ---------------------------------------------------------------


class RecordRef(_Model):
    zone: str
    name: str
    ttl: int = Field(30, ge=0, le=172800)
    old_set_id: str = "old"
    new_set_id: str = "new"


class Weights(_Model):
    old: int
    new: int


def _weight_step(value: Any) -> Any:
    """A bare number is the new cluster's share in percent; a mapping gives both Route 53 weights."""
    if isinstance(value, bool):
        raise ValueError("a weight step is a number or {old: W, new: W}")
    if isinstance(value, int):
        if value > 255:
            raise ValueError(f"weight {value} is above 255")
        if not 0 <= value <= 100:
            raise ValueError(f"weight {value} is not a percentage (0-100) for the new cluster")
        return {"old": 100 - value, "new": value}
    if isinstance(value, dict):
        for side in ("old", "new"):
            w = value.get(side)
            if isinstance(w, int) and not isinstance(w, bool) and w > 255:
                raise ValueError(f"weight {w} is above 255")
            if isinstance(w, int) and w < 0:
                raise ValueError(f"weight {w} is below 0")
        return value
    raise ValueError(f"{value!r} is not a weight step; write a percentage or {{old: W, new: W}}")


WeightStep = Annotated[Weights, BeforeValidator(_weight_step)]


class Thresholds(_Model):
    error_rate: float = Field(0.01, ge=0, le=1)
    latency_ratio: float = Field(2.0, gt=0)
    min_requests: int = Field(10, ge=0)
    latency_floor_ms: float = Field(50.0, ge=0)  # p95 below this never fails the latency gate (jitter)
    latency_min_requests: int = Field(100, ge=1)  # the latency gate judges a p95 over at least this many


class Traffic(_Model):
    router: Literal["route53", "gateway"] = "route53"
    record: RecordRef | None = None
    api_id: str | None = None  # the production HTTP API, for the gateway router
    steps: list[WeightStep] = Field([10, 50, 100], validate_default=True)  # parsed like any written value
    soak: Duration = 60.0
    gate_interval: Duration = 10.0
    thresholds: Thresholds = Thresholds()
    pause_after: list[int] = []
    cloudwatch_alarm: str | None = None
    gate_check: SmokeCheck | None = None  # an HTTP check run at every gate evaluation
    probe_path: str = "/"
    probe_rate: float = Field(20.0, gt=0, le=500)  # requests per second
    probe_timeout: Duration = 2.0
    backend_header: str | None = None  # a response header naming the cluster that answered, recorded per sample
    baseline: Duration = 5.0  # how long the old-only latency baseline is measured before the first shift
    insync_timeout: Duration = 300.0

    @model_validator(mode="after")
    def _coherent(self) -> Traffic:
        if not self.steps:
            raise ValueError("steps: at least one weight step is needed")
        shares = [s.new / (s.old + s.new) if s.old + s.new else 0.5 for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(shares)):
            raise ValueError("steps: each step must send a larger share to the new cluster than the last")
        last = self.steps[-1]
        if last.old != 0 or last.new == 0:
            raise ValueError("steps: the last step must send all traffic to the new cluster (old weight 0)")
        for n in self.pause_after:
            if not 1 <= n <= len(self.steps):
                raise ValueError(f"pause_after: {n} is not a step number (1-{len(self.steps)})")
        if self.router == "route53" and self.record is None:
            raise ValueError("record: the route53 router needs record.zone and record.name")
        if self.router == "gateway" and not self.api_id:
            raise ValueError("api_id: the gateway router needs the production API's id")
        if self.gate_interval > self.soak and self.soak > 0:
            raise ValueError("gate_interval is longer than soak; no gate would ever be evaluated")
        return self


# --- hooks -----------------------------------------------------------------


class Hook(_Model):
    """An operator's own step: a command run at a chosen point of the migration.

    ``check`` makes it resumable: exit 0 means the effect already exists. A hook
    with neither ``check`` nor ``idempotent: true`` is never re-run blindly after
    an interruption; the run stops and asks the operator.
    """

    name: str
    run: list[str]
    check: list[str] | None = None
    undo: list[str] | None = None
    idempotent: bool = False
    before: str | None = None
    after: str | None = None
    env: dict[str, str] = {}
    timeout: Duration = 600.0
    pause_after: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not ENV_NAME.match(v):
            raise ValueError(f"hook name {v!r} must be lowercase letters, digits and '-'")
        return v

    @field_validator("run")
    @classmethod
    def _run(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("run: give the command as a list, e.g. [sh, -c, 'echo hi']")
        return v

    @model_validator(mode="after")
    def _anchor(self) -> Hook:
        if self.before and self.after:
            raise ValueError("a hook takes either before or after, not both")
        return self


# --- environment -----------------------------------------------------------

STEP_KINDS = (
    "duplicate-workspace",
    "detach-cluster",
    "provision-cluster",
    "wait-cluster-ready",
    "write-kubeconfig",
    "replay-workloads",
    "snapshot-volumes",
    "wait-workloads-ready",
    "open-gateway",
    "validate",
    "cut-volumes",
    "shift-traffic",
    "write-report",
)
# Decommission kinds an environment may skip: protect-volumes where the toolkit never sees the old cluster.
SKIPPABLE_DECOMMISSION_KINDS = ("protect-volumes",)


class Environment(_Model):
    cloud: Literal["aws", "gcp"]
    aws: AwsTarget | None = None
    gcp: GcpTarget | None = None
    terraform: Terraform | None = None
    clusters: Clusters
    provisioner: Literal["api", "terraform"] = "api"
    replay: Replay = Replay()
    gateway: Gateway = Gateway()
    validation: Validation = Validation()
    traffic: Traffic | None = None
    requires: list[str] = []
    review: Literal["none", "required"] = "none"
    bake: Duration = 0.0
    hooks: list[Hook] = []
    skip: list[str] = []
    journal: Literal["local", "backend"] = "local"  # backend: journal and run lock next to the state

    @model_validator(mode="after")
    def _coherent(self) -> Environment:
        if self.cloud == "aws" and self.aws is None:
            raise ValueError("aws: an aws environment needs aws.region")
        if self.cloud == "gcp" and self.gcp is None:
            raise ValueError("gcp: a gcp environment needs gcp.project and gcp.location")
        for kind in self.skip:
            if kind not in STEP_KINDS + SKIPPABLE_DECOMMISSION_KINDS:
                raise ValueError(f"skip: {kind!r} is not a step kind "
                                 f"({', '.join(STEP_KINDS + SKIPPABLE_DECOMMISSION_KINDS)})")
        names = [h.name for h in self.hooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"hooks: duplicate hook names {dupes}")
        for h in self.hooks:
            anchor = h.before or h.after
            if anchor and anchor not in STEP_KINDS and anchor not in names:
                raise ValueError(f"hooks: {h.name}: {anchor!r} is not a step kind or hook name")
        if "shift-traffic" not in self.skip and self.traffic is None:
            raise ValueError("traffic: missing (or add 'shift-traffic' to skip)")
        if self.journal == "backend" and self.terraform is None:
            raise ValueError("journal: 'backend' keeps the journal next to the terraform state; add terraform")
        if self.provisioner == "terraform" and self.terraform is None:
            raise ValueError("provisioner: 'terraform' needs a terraform section")
        uses_aws = [*([f"the {self.traffic.router} router"] if self.traffic and "shift-traffic" not in self.skip
                      else []),
                    *(["the temporary gateway"] if self.gateway.enabled and not self.gateway.url
                      and "open-gateway" not in self.skip else [])]
        if uses_aws and self.aws is None and not self.gateway.region:
            raise ValueError(f"gateway.region: missing; this environment has no aws section, but "
                             f"{' and '.join(uses_aws)} {'use' if len(uses_aws) > 1 else 'uses'} AWS: set "
                             "gateway.region (the AWS region of the gateway and the Route 53 calls), or give the "
                             "environment an aws section")
        return self


class Sandbox(_Model):
    """Where the embedded sandbox writes its endpoints; the toolkit starts it when needed."""

    enabled: bool = False
    state_dir: str = ".migrate/sandbox"


class Config(_Model):
    version: Literal[1] = 1
    state_dir: str = ".migrate"
    plans_dir: str = "plans"
    sandbox: Sandbox = Sandbox()
    environments: dict[str, Environment]

    @field_validator("environments")
    @classmethod
    def _names(cls, v: dict[str, Environment]) -> dict[str, Environment]:
        if not v:
            raise ValueError("at least one environment is needed")
        for name in v:
            if not ENV_NAME.match(name):
                raise ValueError(f"environment name {name!r} must be lowercase letters, digits and '-'")
        return v

    @model_validator(mode="after")
    def _requires(self) -> Config:
        for name, env in self.environments.items():
            for req in env.requires:
                if req not in self.environments:
                    raise ValueError(f"environments.{name}.requires: {req!r} is not an environment")
                if req == name:
                    raise ValueError(f"environments.{name}.requires: an environment cannot require itself")
        # Reject cycles: the promotion order must be a DAG.
        seen: dict[str, int] = {}

        def visit(n: str, path: tuple[str, ...]) -> None:
            if seen.get(n) == 2:
                return
            if seen.get(n) == 1:
                raise ValueError(f"requires: cycle {' -> '.join((*path, n))}")
            seen[n] = 1
            for r in self.environments[n].requires:
                visit(r, (*path, n))
            seen[n] = 2

        for n in self.environments:
            visit(n, ())
        return self


class LoadedConfig(BaseModel):
    """A validated config together with where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    config: Config
    raw: dict[str, Any]

    @property
    def root(self) -> Path:
        return self.path.parent

    def env(self, name: str) -> Environment:
        try:
            return self.config.environments[name]
        except KeyError:
            known = ", ".join(self.config.environments)
            close = difflib.get_close_matches(name, list(self.config.environments), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"unknown environment {name!r}",
                where=str(self.path.name),
                hint=f"{hint}known environments: {known}",
            ) from None

    def with_hook(self, env: str, hook: dict[str, Any]) -> LoadedConfig:
        """This config with one more hook in ``env``; validated like the file (for --inject-fault)."""
        raw = copy.deepcopy(self.raw)
        section = raw["environments"][env]
        section["hooks"] = [*(section.get("hooks") or []), hook]
        try:
            config = Config.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(_format_validation(self.path, e, raw), where=str(self.path.name)) from None
        return LoadedConfig(path=self.path, config=config, raw=raw)

    def env_digest(self, name: str) -> str:
        """Hash of one environment's raw section: a plan is stale once it changes."""
        section = self.raw.get("environments", {}).get(name, {})
        blob = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.root / p


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "constrained-")) or "[" in str(part):
            continue  # pydantic's internal validator names are noise for an operator
        else:
            out += f".{part}" if out else str(part)
    return out


def _format_validation(path: Path, err: ValidationError, raw: Any) -> str:
    lines = []
    for e in err.errors()[:10]:
        loc = _loc(tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            parent = raw
            for part in e["loc"][:-1]:
                try:
                    parent = parent[part]
                except (KeyError, IndexError, TypeError):
                    parent = None
                    break
            msg = f"unknown key {key!r}"
            if isinstance(parent, dict):
                close = difflib.get_close_matches(key, [k for k in parent if k != key], n=1)
                if close:
                    msg += f" (did you mean {close[0]!r}?)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"{path.name}: {loc}: {msg}" if loc else f"{path.name}: {msg}")
    more = len(err.errors()) - 10
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, node: yaml.Node, first: yaml.Node) -> None:
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=node.start_mark)
        self.key = key
        self.first_line = first.start_mark.line + 1


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping; PyYAML would silently keep the last.

    Keys brought in by a merge (``<<: *anchor``) may still be overridden: that is what merges are for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # unhashable: the base class reports it
                if first is not key_node:
                    raise _DuplicateKey(key, key_node, first)
        return super().construct_mapping(node, deep)


def load_config(path: str | Path = DEFAULT_CONFIG) -> LoadedConfig:
    """Read and validate migrate.yaml. Raises ConfigError naming the file, line or field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "configuration file not found",
            where=str(p),
            hint="run from the project root or pass --config PATH",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read configuration: {e}", where=str(p)) from e
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: no arbitrary objects
    except _DuplicateKey as e:
        mark = e.problem_mark
        where = f"{p.name}:{mark.line + 1}:{mark.column + 1}" if mark else p.name
        raise ConfigError(f"duplicate key {e.key!r}: it is already set on line {e.first_line} of the same "
                          "mapping, and YAML would silently keep only the last one", where=where,
                          hint="remove one of them, or merge them into one") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p.name}:{mark.line + 1}:{mark.column + 1}" if mark else p.name
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"malformed YAML: {problem}", where=where, hint="fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError("the file must be a mapping with an 'environments' key", where=p.name)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation(p, e, raw)) from None
    return LoadedConfig(path=p.resolve(), config=cfg, raw=raw)
