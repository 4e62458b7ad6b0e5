from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.errors import StateError
from migrate.terraform import _tfjson
from migrate.terraform.address import format_key
from migrate.terraform.state import State, check_push

DATA = Path(__file__).parent / "data"
AWS = 'provider["registry.terraform.io/hashicorp/aws"]'


def res(rtype: str, name: str, *, module: str = "", mode: str = "managed", keys: list[Any] | None = None,
        deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {}
    if module:
        r["module"] = module
    r.update({"mode": mode, "type": rtype, "name": name})
    if keys:
        r["each"] = "list" if isinstance(keys[0], int) else "map"
    r["provider"] = AWS
    insts = []
    for k in keys or [None]:
        inst: dict[str, Any] = {}
        if k is not None:
            inst["index_key"] = k
        inst.update({"schema_version": 0, "attributes": {"id": f"{rtype}.{name}.{k}"},
                     "sensitive_attributes": []})
        if deps:
            inst["dependencies"] = deps
        insts.append(inst)
    r["instances"] = insts
    r.update(extra)
    return r


def make_state(resources: list[dict[str, Any]], **top: Any) -> State:
    data = {"version": 4, "terraform_version": "1.11.4", "serial": 3, "lineage": "L1", "outputs": {},
            "resources": resources, "check_results": None}
    data.update(top)
    return State.from_dict(data).sorted()


@pytest.fixture
def eks() -> State:
    return make_state([
        res("aws_vpc", "main"),
        res("aws_route53_zone", "z"),
        res("aws_iam_role", "shared_admin"),
        res("aws_eks_cluster", "this", module="module.eks", deps=["aws_vpc.main"]),
        res("aws_eks_node_group", "ng", module="module.eks", keys=["a", "b"],
            deps=["module.eks.aws_eks_cluster.this", "aws_vpc.main"]),
        res("aws_eks_addon", "cni", module="module.eks", deps=["module.eks.aws_eks_cluster.this"]),
        res("aws_iam_openid_connect_provider", "oidc", module="module.eks",
            deps=["module.eks.aws_eks_cluster.this"]),
        res("aws_iam_role", "irsa", keys=[0, 1], deps=["module.eks.aws_iam_openid_connect_provider.oidc"]),
        res("helm_release", "ingress", deps=["aws_iam_role.irsa"]),
        res("aws_eks_cluster", "this", mode="data", deps=["module.eks.aws_eks_cluster.this"]),
    ])


# ---- round trip ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tf1114_modules.tfstate"])
def test_terraform_written_file_round_trips_byte_for_byte(name: str) -> None:
    raw = (DATA / name).read_bytes()
    state = State.parse(raw, name)
    assert state.to_bytes() == raw
    assert state.sorted().to_bytes() == raw  # already in Terraform's order
    assert _tfjson.dumps(state.data, accelerate=False) == raw  # stdlib path, same bytes


def test_unknown_fields_and_number_spelling_survive() -> None:
    raw = (DATA / "tf1114_modules.tfstate").read_bytes()
    data = json.loads(raw)
    data["future_top"] = {"x": [1, 2]}
    data["resources"][0]["future_res"] = True
    data["resources"][0]["instances"][0]["identity"] = {"arn": "a<b>&"}
    data["resources"][0]["instances"][0]["attributes"]["tiny"] = 1  # placeholder, replaced below
    text = _tfjson.dumps(data).replace(b'"tiny": 1', b'"tiny": 0.0000001')
    state = State.parse(text, "x")
    assert state.to_bytes() == text
    new, _ = state.rm(["terraform_data.b[0]"])
    out = json.loads(new.to_bytes())
    assert out["future_top"] == {"x": [1, 2]} and out["resources"][0]["future_res"] is True
    assert b'"tiny": 0.0000001' in new.to_bytes()
    assert b'"a\\u003cb\\u003e\\u0026"' in new.to_bytes()


def test_large_integers_survive() -> None:
    big = 123456789012345678901234567890
    state = make_state([res("aws_x", "y")])
    state.data["resources"][0]["instances"][0]["attributes"]["n"] = big
    assert str(big).encode() in state.to_bytes()
    assert State.parse(state.to_bytes(), "x") == state


# ---- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"version": 4, "serial": ', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a JSON object"),
        (b'{"version": 3, "serial": 1, "lineage": "x", "modules": []}', "unsupported state format version 3"),
        (b'{"version": 5, "serial": 1, "lineage": "x"}', "unsupported state format version 5"),
        (b'{"serial": 1, "lineage": "x"}', "unsupported state format version None"),
        (b'{"version": 4, "serial": -1, "lineage": "x"}', "serial"),
        (b'{"version": 4, "serial": 1}', "no lineage"),
        (b'{"version": 4, "serial": 1, "lineage": "x", "resources": [{"type": 1}]}', "malformed"),
        (b'{"meta": {}, "encrypted_data": "abc", "encryption_version": "v0"}', "encrypted"),
    ],
)
def test_bad_states_are_refused_with_where(raw: bytes, needle: str) -> None:
    with pytest.raises(StateError) as e:
        State.parse(raw, "s3://b/env:/dev/terraform.tfstate")
    assert needle in e.value.what
    assert e.value.where == "s3://b/env:/dev/terraform.tfstate"
    assert e.value.hint


def test_v3_hint_says_how_to_upgrade() -> None:
    with pytest.raises(StateError) as e:
        State.parse(b'{"version": 3, "serial": 1, "lineage": "x"}', "f")
    assert "0.12" in (e.value.hint or "")


# ---- addresses and surgery -------------------------------------------------------------


def test_addresses_and_order(eks: State) -> None:
    assert eks.addresses()[0] == "data.aws_eks_cluster.this"  # data sorts before managed
    assert 'module.eks.aws_eks_node_group.ng["a"]' in eks.addresses()
    assert eks.addresses()[-1].startswith("module.eks.")


def test_select_by_prefix(eks: State) -> None:
    assert len(eks.select(["module.eks"])) == 5
    assert eks.select(["aws_iam_role.irsa"]) == ["aws_iam_role.irsa[0]", "aws_iam_role.irsa[1]"]
    with pytest.raises(StateError, match=r"no resource in the state matches aws_nope\.x"):
        eks.select(["aws_nope.x"], missing_ok=False)


def test_rm_is_pure_and_exact(eks: State) -> None:
    before = eks.to_bytes()
    new, removed = eks.rm(['module.eks.aws_eks_node_group.ng["a"]', "aws_iam_role.irsa"])
    assert eks.to_bytes() == before
    assert removed == ["aws_iam_role.irsa[0]", "aws_iam_role.irsa[1]", 'module.eks.aws_eks_node_group.ng["a"]']
    assert set(new.addresses()) == set(eks.addresses()) - set(removed)
    assert new.lineage == eks.lineage and new.serial == eks.serial


def test_rm_unknown_address_refused_and_nothing_removed(eks: State) -> None:
    with pytest.raises(StateError, match=r"aws_nope\.x"):
        eks.rm(["aws_vpc.main", "aws_nope.x"])
    same, removed = eks.rm(["aws_nope.x"], missing_ok=True)
    assert same is eks and removed == []


def test_mv_resource_instance_and_module(eks: State) -> None:
    moved = eks.mv("aws_vpc.main", "aws_vpc.core")
    assert "aws_vpc.core" in moved.addresses() and "aws_vpc.main" not in moved.addresses()
    inst = eks.mv("aws_iam_role.irsa[1]", 'aws_iam_role.irsa_by_name["x"]')
    assert 'aws_iam_role.irsa_by_name["x"]' in inst.addresses()
    assert "aws_iam_role.irsa[0]" in inst.addresses()
    new_res = next(r for r in inst.resources if r["name"] == "irsa_by_name")
    assert new_res["each"] == "map"
    mod = eks.mv("module.eks", 'module.eks_blue["v1"]')
    assert 'module.eks_blue["v1"].aws_eks_cluster.this' in mod.addresses()
    assert mod.mv('module.eks_blue["v1"]', "module.eks") == eks
    with pytest.raises(StateError, match="already exists"):
        eks.mv("aws_vpc.main", "aws_vpc.main")
    with pytest.raises(StateError, match="type"):
        eks.mv("aws_vpc.main", "aws_subnet.main")
    with pytest.raises(StateError, match="no resource"):
        eks.mv("aws_vpc.nope", "aws_vpc.other")


def test_dependency_closure_of_the_cluster(eks: State) -> None:
    closure = eks.dependents(["module.eks.aws_eks_cluster.this"])
    assert set(closure) == {
        "data.aws_eks_cluster.this",
        "module.eks.aws_eks_cluster.this",
        'module.eks.aws_eks_node_group.ng["a"]',
        'module.eks.aws_eks_node_group.ng["b"]',
        "module.eks.aws_eks_addon.cni",
        "module.eks.aws_iam_openid_connect_provider.oidc",
        "aws_iam_role.irsa[0]",
        "aws_iam_role.irsa[1]",
        "helm_release.ingress",
    }
    assert "aws_vpc.main" not in closure and "aws_iam_role.shared_admin" not in closure


def test_closure_respects_module_instances() -> None:
    state = make_state([
        res("aws_eks_cluster", "this", module='module.eks["blue"]'),
        res("aws_eks_cluster", "this", module='module.eks["green"]'),
        res("aws_eks_node_group", "ng", module='module.eks["blue"]', deps=["module.eks.aws_eks_cluster.this"]),
        res("aws_eks_node_group", "ng", module='module.eks["green"]', deps=["module.eks.aws_eks_cluster.this"]),
        res("aws_thing", "root", deps=["module.eks.aws_eks_cluster.this"]),
    ])
    closure = state.dependents(['module.eks["blue"].aws_eks_cluster.this'])
    assert closure == ["aws_thing.root", 'module.eks["blue"].aws_eks_cluster.this',
                       'module.eks["blue"].aws_eks_node_group.ng']


def test_closure_from_terraform_written_state() -> None:
    state = State.parse((DATA / "tf1114_modules.tfstate").read_bytes(), "f")
    assert state.dependents(['module.m["x"].terraform_data.c']) == [
        'module.m["x"].terraform_data.c', 'module.m["x"].terraform_data.d']
    with pytest.raises(StateError):
        state.dependents(["terraform_data.nope"])


# ---- lineage and serial --------------------------------------------------------------------


def test_push_rules(eks: State) -> None:
    check_push(None, eks)
    check_push(State.empty(), eks)  # empty accepts anything
    check_push(eks, eks.bumped())
    check_push(eks, eks)  # same serial, same content
    with pytest.raises(StateError, match="lineage"):
        check_push(eks, eks.forked())
    with pytest.raises(StateError, match="newer state"):
        check_push(eks.bumped(), eks)
    changed, _ = eks.rm(["aws_vpc.main"])
    with pytest.raises(StateError, match="same serial"):
        check_push(eks, changed)


def test_fork_gives_fresh_lineage_and_origin(eks: State) -> None:
    a, b = eks.forked(origin={"workspace": "dev"}), eks.forked()
    assert len({eks.lineage, a.lineage, b.lineage}) == 3
    assert a.origin == {"workspace": "dev"} and eks.origin is None
    assert a.without_origin().origin is None
    assert a.bumped().serial == eks.serial + 1


# ---- properties --------------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c"])
types = st.sampled_from(["aws_x", "aws_y"])
mods = st.sampled_from(["", "module.m", 'module.m["k"]', "module.m.module.n[0]"])
key_lists = st.one_of(st.none(), st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
                      st.lists(st.text("xyz.", min_size=1, max_size=3), min_size=1, max_size=3, unique=True))


@st.composite
def states(draw: st.DrawFn) -> State:
    seen, rs = set(), []
    for _ in range(draw(st.integers(1, 8))):
        ident = (draw(mods), draw(st.sampled_from(["managed", "data"])), draw(types), draw(names))
        if ident in seen:
            continue
        seen.add(ident)
        rs.append(res(ident[2], ident[3], module=ident[0], mode=ident[1], keys=draw(key_lists)))
    return make_state(rs)


@settings(max_examples=60, deadline=None)
@given(states(), st.data())
def test_rm_partitions_the_state(state: State, data: st.DataObject) -> None:
    addrs = state.addresses()
    chosen = data.draw(st.lists(st.sampled_from(addrs), max_size=len(addrs), unique=True))
    new, removed = state.rm(chosen, missing_ok=True)
    assert set(removed) == set(chosen)
    assert set(new.addresses()) | set(removed) == set(addrs)
    assert not set(new.addresses()) & set(removed)
    assert State.parse(new.to_bytes(), "x") == new
    assert new.sorted().to_bytes() == new.to_bytes()


@settings(max_examples=60, deadline=None)
@given(states(), st.data())
def test_mv_there_and_back_is_identity(state: State, data: st.DataObject) -> None:
    r = data.draw(st.sampled_from(state.resources))
    mod = r.get("module", "")
    prefix = f"{mod}." if mod else ""
    mode = "data." if r["mode"] == "data" else ""
    src = f"{prefix}{mode}{r['type']}.{r['name']}"
    dst = f"{prefix}{mode}{r['type']}.zz_moved"
    assert state.mv(src, dst).mv(dst, src) == state
    keyed = [o for o in r["instances"] if "index_key" in o]
    if keyed:
        k = keyed[0]["index_key"]
        moved = state.mv(src + format_key(k), dst + format_key(k))
        assert dst + format_key(k) in moved.addresses()
        assert len(moved.addresses()) == len(state.addresses())


def test_address_count_is_the_number_of_addresses_without_formatting_them() -> None:
    def res(name: str, keys: list[object], deposed: bool = False) -> dict[str, object]:
        insts: list[dict[str, object]] = []
        for k in keys:
            inst: dict[str, object] = {"schema_version": 0, "attributes": {"id": f"{name}-{k}"}}
            if k is not None:
                inst["index_key"] = k
            insts.append(inst)
        if deposed:  # a deposed object shares its instance's address
            insts.append({**insts[0], "deposed": "abcd1234"})
        return {"mode": "managed", "type": "null_resource", "name": name,
                "provider": 'provider["registry.terraform.io/hashicorp/null"]', "instances": insts}

    s = State.from_dict({"version": 4, "terraform_version": "1.11.4", "serial": 1, "lineage": "l", "outputs": {},
                         "resources": [res("single", [None], deposed=True), res("counted", [0, 1, 2]),
                                       res("each", ["a", "b", "1"]), res("mixed", [1, "1"]), res("none", [])]})
    assert s.address_count() == len(s.addresses()) == 1 + 3 + 3 + 2
