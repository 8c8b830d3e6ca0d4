"""Name rules, generated names and the owner alias."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcore import names
from netcore.errors import InvalidSpec


@pytest.mark.parametrize("name", ["eth0", "a", "x" * 15, "br-front.12", "é" * 7, "web_1", "a=b", "🙂🙂🙂"])
def test_valid_ifnames(name):
    names.validate_ifname(name, field="f")


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("", "the name is empty"),
        ("x" * 16, "is 16 bytes long"),
        ("é" * 8, "is 16 bytes long"),  # 8 characters, 16 bytes
        ("a/b", "contains '/'"),
        ("a:b", "contains ':'"),
        ("a b", "whitespace or a control character"),
        ("a\tb", "whitespace or a control character"),
        ("a\nb", "whitespace or a control character"),
        ("a\x00b", "whitespace or a control character"),
        ("a\x7f", "whitespace or a control character"),
        ("a\u2028", "whitespace or a control character"),
        ("ab\u202ecd", "bidirectional formatting character (U+202E RIGHT-TO-LEFT OVERRIDE) at character 3"),
        (
            "a\u200bb",
            "invisible or bidirectional formatting character (U+200B ZERO WIDTH SPACE) at character 2",
        ),
        ("sxh-<script>", "the markup character '<' at character 5"),
        ("a&b", "the markup character '&' at character 2"),
        ('a"b', "the markup character '\"' at character 2"),
        ("a`b", "the markup character '`' at character 2"),
        (".", "is not allowed as a name"),
        ("..", "is not allowed as a name"),
        (7, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_invalid_ifnames_name_the_field_and_the_rule(name, said):
    with pytest.raises(InvalidSpec, match=re.escape(said)) as caught:
        names.validate_ifname(name, field="nodes.web1")
    assert str(caught.value).startswith("nodes.web1: ")


def test_netns_names_follow_the_same_rules_but_may_be_longer():
    names.validate_netns_name("demo-" + "n" * 100, field="netns")
    for bad in ["", ".", "a/b", "a b", "x" * 256]:
        with pytest.raises(InvalidSpec, match="^netns: "):
            names.validate_netns_name(bad, field="netns")


@pytest.mark.parametrize("name", ["demo", "a", "12345678", "t-1", "-"])
def test_valid_topology_names(name):
    names.validate_topology_name(name)


def test_a_topology_name_says_which_character_is_wrong_and_where():
    with pytest.raises(InvalidSpec, match=re.escape("(not '<' at character 3)")):
        names.validate_topology_name("ab<c")
    with pytest.raises(InvalidSpec, match=re.escape("(not U+202E RIGHT-TO-LEFT OVERRIDE at character 2)")):
        names.validate_topology_name("a\u202eb")


@pytest.mark.parametrize("name", ["", "123456789", "Demo", "de_mo", "dé", "a.b", "demo\n", 12, None])
def test_invalid_topology_names(name):
    with pytest.raises(InvalidSpec, match=r"^name: .* must be 1 to 8 characters of a-z, 0-9 and '-'"):
        names.validate_topology_name(name)


# An independent statement of the rule: 1-15 UTF-8 bytes, none of / : whitespace, C0/DEL/C1
# controls, markup characters, or Unicode format characters (bidi overrides, zero-width ones).
_IFNAME_RULE = re.compile(r"[^/:\s\x00-\x1f\x7f-\x9f<>&\"'`]+")


def _rule_accepts(name: str) -> bool:
    formatting = any(unicodedata.category(c) == "Cf" for c in name)
    return (
        bool(_IFNAME_RULE.fullmatch(name))
        and not formatting
        and len(name.encode()) <= 15
        and name not in (".", "..")
    )


_tricky = st.sampled_from(list("a.-_é日🙂/: \t\n\x00\x7f\x85\xa0\u2028\u3000<&\u202e\u200b\u2066"))
_texts = st.text(_tricky | st.characters(exclude_categories=("Cs",)), max_size=18)


@given(_texts)
def test_validate_ifname_accepts_exactly_the_rule(name):
    try:
        names.validate_ifname(name, field="f")
        accepted = True
    except InvalidSpec:
        accepted = False
    assert accepted == _rule_accepts(name)


def test_fit_ifname_keeps_short_names_and_shortens_long_ones():
    assert names.fit_ifname("demo-web1-front") == "demo-web1-front"  # exactly 15 bytes
    long = names.fit_ifname("demo-web1-backend")
    assert re.fullmatch(r"demo-we~[a-z2-7]{7}", long)
    assert names.fit_ifname("demo-web1-backend") == long


def test_shortened_names_of_thousands_of_endpoints_stay_apart():
    fitted = {names.host_veth_name("t1234567", f"n{index}", "lan") for index in range(20000)}
    assert len(fitted) == 20000


def test_fit_ifname_does_not_split_a_utf8_character():
    assert names.fit_ifname("日本語日本語").startswith("日本~")  # 6 bytes kept of 7
    assert names.fit_ifname("éééééééé").startswith("ééé~")


@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_fit_ifname_always_fits_and_is_deterministic(name):
    fitted = names.fit_ifname(name)
    assert len(fitted.encode()) <= 15
    assert fitted == names.fit_ifname(name)
    if len(name.encode()) <= 15:
        assert fitted == name


@given(st.text(min_size=16, max_size=40), st.text(min_size=16, max_size=40))
def test_fit_ifname_keeps_different_prefixes_apart(a, b):
    if a.encode()[:10] != b.encode()[:10]:
        assert names.fit_ifname(a) != names.fit_ifname(b)


def test_fit_ifname_sample_of_similar_long_names_does_not_collide():
    sample = [f"demo-node{i}-{net}" for i in range(40) for net in ("frontend", "backend", "storage")]
    fitted = [names.fit_ifname(name) for name in sample]
    assert all(len(name.encode()) <= 15 for name in fitted)
    assert len(set(fitted)) == len(sample)


def test_generated_names():
    assert names.namespace_name("demo", "web1") == "demo-web1"
    assert names.namespace_name("demo", "a-rather-long-nod") == "demo-a-rather-long-nod"  # a file name
    assert names.bridge_name("demo", "front") == "demo-front"
    assert names.bridge_name("demo", "front", 0) == "demo-front"
    assert names.bridge_name("demo", "front", 3) == "demo-front.3"
    assert names.segment_link_names("demo", "front", 3) == ("demo-front.3r", "demo-front.3s")
    assert names.vxlan_name("demo", "back") == "demo-back.vx"
    assert names.host_veth_name("demo", "web1", "front") == "demo-web1-front"
    assert names.host_veth_name("demo", "web1", "backend") == names.fit_ifname("demo-web1-backend")
    assert names.bridge_name("longtopo", "frontend-net", 12) == names.fit_ifname("longtopo-frontend-net.12")


def test_generated_names_refuse_impossible_segments():
    with pytest.raises(ValueError):
        names.bridge_name("demo", "front", -1)
    with pytest.raises(ValueError):
        names.segment_link_names("demo", "front", 0)


def test_owner_alias_format():
    assert (
        names.owner_alias(topology="demo", role="bridge", network="front")
        == "switchboard:demo:bridge:network=front"
    )
    assert (
        names.owner_alias(topology="demo", role="veth", node="web1", network="front")
        == "switchboard:demo:veth:network=front:node=web1"
    )
    assert names.owner_alias(topology="demo", role="node", node="db") == "switchboard:demo:node:node=db"
    assert (
        names.owner_alias(topology="demo", role="node", node="web1", shared=["side", "db"])
        == "switchboard:demo:node:node=web1:shared=db,side"
    )
    no_sharers = names.owner_alias(topology="demo", role="node", node="db", shared=())
    assert no_sharers == "switchboard:demo:node:node=db"
    assert (
        names.owner_alias(topology="demo", role="segment", network="front", segment=2)
        == "switchboard:demo:segment:network=front:segment=2"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"topology": "demo", "role": "router"},
        {"topology": "demo", "role": "veth", "node": "a:b"},
        {"topology": "", "role": "bridge"},
        {"topology": "demo", "role": "segment", "segment": -1},
        {"topology": "demo", "role": "veth", "node": "web1", "shared": ["side"]},  # only a node's
        {"topology": "demo", "role": "node", "node": "web1", "shared": ["a,b"]},
        {"topology": "demo", "role": "node", "node": "web1", "shared": ["a:b"]},
        {"topology": "demo", "role": "node", "node": "web1", "shared": [""]},
        {"topology": "demo", "role": "node", "node": "web1", "shared": ["a", "a"]},
        {"topology": "demo", "role": "node", "node": "web1", "shared": "side"},  # a string, not names
    ],
)
def test_owner_alias_refuses_what_cannot_round_trip(kwargs):
    with pytest.raises(ValueError):
        names.owner_alias(**kwargs)


@pytest.mark.parametrize(
    "alias",
    [
        None,
        "",
        "docker0 uplink",
        "switchboard",
        "switchboard:demo",
        "Switchboard:demo:bridge",
        "switchboardx:demo:bridge",
        "switchboard::bridge",
        "switchboard:demo:router",
        "switchboard:demo:veth:colour=red",
        "switchboard:demo:veth:node",
        "switchboard:demo:veth:node=",
        "switchboard:demo:veth:node=a:node=b",
        "switchboard:demo:segment:segment=x",
        "switchboard:demo:segment:segment=²",
        "switchboard:demo:veth:node=web1:shared=side",  # only a node's alias lists sharers
        "switchboard:demo:node:node=web1:shared=",
        "switchboard:demo:node:node=web1:shared=a,,b",
        "switchboard:demo:node:node=web1:shared=a,",
        "switchboard:demo:node:node=web1:shared=a,a",
        "switchboard:demo:node:node=web1:shared=a:shared=b",
    ],
)
def test_parse_owner_alias_ignores_what_is_not_ours(alias):
    assert names.parse_owner_alias(alias) is None


def test_parse_owner_alias_reads_ours():
    tag = names.parse_owner_alias("switchboard:demo:veth:network=front:node=web1")
    assert tag == names.OwnerTag(topology="demo", role="veth", network="front", node="web1")


def test_parse_owner_alias_reads_the_nodes_sharing_a_namespace():
    tag = names.parse_owner_alias("switchboard:demo:node:node=web1:shared=db,side")
    assert tag == names.OwnerTag(topology="demo", role="node", node="web1", shared=("db", "side"))
    assert names.parse_owner_alias("switchboard:demo:node:node=web1").shared == ()


def test_owner_alias_fits_the_kernels_alias_or_is_refused():
    """IFALIASZ is 256, the NUL netcore sends counted: 254 bytes are set, 255 refused (the limit is
    checked against the real kernel in test_topology_apply.py)."""
    head = "switchboard:demo:node:node=web1:shared="
    fill = 254 - len(head)
    shared = [f"n{i:02d}" + "x" * 12 for i in range(fill // 16)]  # 15 bytes and a comma each
    rest = fill - len(",".join(shared)) - 1
    shared.append("z" * rest)
    alias = names.owner_alias(topology="demo", role="node", node="web1", shared=shared)
    assert len(alias.encode()) == names.MAX_ALIAS_BYTES == 254
    assert names.parse_owner_alias(alias).shared == tuple(sorted(shared))
    for last in ("z" * (rest + 1), "é" + "z" * (rest - 1)):  # bytes, not characters: é is two
        with pytest.raises(ValueError, match="would be 255 bytes long .*at most 254"):
            names.owner_alias(topology="demo", role="node", node="web1", shared=[*shared[:-1], last])


def _is_name(text: str) -> bool:
    try:
        names.validate_ifname(text, field="f")
    except InvalidSpec:
        return False
    return True


_names = st.text(min_size=1, max_size=15).filter(_is_name)


@given(
    topology=st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True),
    role=st.sampled_from(names.ROLES),
    network=st.none() | _names,
    node=st.none() | _names,
    segment=st.none() | st.integers(min_value=0, max_value=10_000),
    shared=st.lists(_names.filter(lambda n: "," not in n), max_size=6, unique=True),
)
def test_owner_alias_round_trip(topology, role, network, node, segment, shared):
    shared = sorted(shared) if role == "node" else []
    tag = names.OwnerTag(
        topology=topology, role=role, network=network, node=node, segment=segment, shared=tuple(shared)
    )
    alias = names.owner_alias(
        topology=topology, role=role, network=network, node=node, segment=segment, shared=shared
    )
    assert names.parse_owner_alias(alias) == tag
