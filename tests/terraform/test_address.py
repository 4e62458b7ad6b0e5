from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrate.errors import StateError
from migrate.terraform.address import Address, ModuleStep, format_key, parse_address

idents = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
keys = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6), st.text(max_size=8))


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    module = tuple(ModuleStep(draw(idents), draw(keys)) for _ in range(draw(st.integers(0, 3))))
    if draw(st.booleans()) and module:
        return Address(module)
    key = draw(keys)
    return Address(module, draw(st.sampled_from(["managed", "data"])), draw(idents), draw(idents),
                   key, key is not None)


@given(addresses())
def test_format_parse_round_trip(addr: Address) -> None:
    text = str(addr)
    assert parse_address(text) == addr
    assert str(parse_address(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        'module.a["x"].module.b[0].aws_eks_cluster.this["k"]',
        "data.aws_eks_cluster.this",
        "module.eks.data.aws_iam_policy_document.p[3]",
        'aws_s3_object.o["a.b/c \\"q\\""]',
        "module.eks",
        'module.m["y.z"]',
    ],
)
def test_known_forms(text: str) -> None:
    assert str(parse_address(text)) == text


def test_parts() -> None:
    a = parse_address('module.a["x"].module.b[0].aws_eks_cluster.this["k"]')
    assert a.module == (ModuleStep("a", "x"), ModuleStep("b", 0))
    assert (a.mode, a.type, a.name, a.key) == ("managed", "aws_eks_cluster", "this", "k")
    assert a.config_str == "module.a.module.b.aws_eks_cluster.this"
    d = parse_address("data.aws_eks_cluster.this")
    assert d.mode == "data" and d.resource_str == "data.aws_eks_cluster.this"


@pytest.mark.parametrize("bad", ["", " x.y", "aws_x", "aws_x.y[", 'aws_x.y["a]', "aws_x.y.z", "module.", "1abc.x",
                                 "aws_x.y[1.5]", "aws_x.y[0]extra"])
def test_malformed_addresses_are_refused(bad: str) -> None:
    with pytest.raises(StateError) as e:
        parse_address(bad)
    assert "invalid" in e.value.what and e.value.hint


def test_matching() -> None:
    inst = parse_address('module.eks["a"].aws_eks_node_group.ng[1]')
    assert parse_address("module.eks").matches(inst)
    assert parse_address('module.eks["a"]').matches(inst)
    assert not parse_address('module.eks["b"]').matches(inst)
    assert parse_address('module.eks["a"].aws_eks_node_group.ng').matches(inst)
    assert parse_address('module.eks["a"].aws_eks_node_group.ng[1]').matches(inst)
    assert not parse_address('module.eks["a"].aws_eks_node_group.ng[0]').matches(inst)
    assert not parse_address("aws_eks_node_group.ng").matches(inst)
    assert not parse_address('module.eks["a"].data.aws_eks_node_group.ng').matches(inst)
    # Terraform's rules: only a module address's last keyless step is a wildcard
    assert not parse_address("module.eks.aws_eks_node_group.ng").matches(inst)
    assert parse_address("module.eks.aws_eks_node_group.ng").matches(inst, any_key=True)
    deep = parse_address('module.a["x"].module.b[0].aws_s3_bucket.b')
    assert parse_address('module.a["x"].module.b').matches(deep)
    assert not parse_address("module.a.module.b").matches(deep)


def test_format_key_escapes() -> None:
    assert format_key('a"b\\c\n') == '["a\\"b\\\\c\\n"]'
    assert format_key(3) == "[3]"
    assert format_key(None) == ""
