import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archscout as asc
from archscout.errors import ConfigError, InvalidArchitectureError


def macro_space():
    return asc.Space({
        "width": asc.Choice([16, 24, 32]),
        "stages": asc.Stages(n=3, depth=asc.Ordinal([1, 2, 3]),
                             layer={"kernel": asc.Choice([3, 5, 7]), "expand": asc.Choice([3, 4, 6])}),
        "cell": asc.Cell(nodes=4, ops=["none", "skip", "conv1x1", "conv3x3", "avgpool3x3"]),
        "optimizer": asc.Choice(["sgd", "adam"]),
        "momentum": asc.Float(0.5, 0.99, when={"optimizer": "sgd"}),
        "lr": asc.Float(1e-4, 1e-1, log=True),
        "layers": asc.Int(1, 8, step=1),
    })


SPACES = {
    "nb201": lambda: asc.create_space("nb201"),
    "mbv3": lambda: asc.create_space("mbv3"),
    "macro": macro_space,
    "conditional": lambda: asc.Space({
        "a": asc.Choice(["x", "y"]),
        "b": asc.Ordinal([1, 2, 3], when={"a": "x"}),
        "c": asc.Int(0, 3, when={"a": "y"}),
    }),
}


@pytest.fixture(params=sorted(SPACES))
def space(request):
    return SPACES[request.param]()


def test_sample_parse_roundtrip_and_validate(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        assert space.parse(str(a)) == a
        assert hash(space.parse(str(a))) == hash(a)
        assert space.validate(a.to_dict()) == a
        assert space.encode(a).shape == (space.encoding_size(),)
        assert space.encode(a, "path").shape == (space.encoding_size("path"),)


def test_mutate_changes_one_decision_and_stays_valid(space):
    rng = np.random.default_rng(1)
    a = space.sample(rng)
    for _ in range(50):
        b = space.mutate(a, rng)
        assert b != a
        assert space.validate(str(b)) == b
        a = b


def test_neighbors_valid_distinct(space):
    rng = np.random.default_rng(2)
    a = space.sample(rng)
    nb = space.neighbors(a)
    assert nb and a not in nb
    assert len(set(nb)) == len(nb)
    for b in nb:
        assert space.parse(str(b)) == b


def test_architecture_is_frozen():
    a = asc.create_space("nb201").sample(np.random.default_rng(0))
    with pytest.raises(AttributeError):
        a.foo = 1
    assert {a: 1}[a] == 1


def test_nb201_official_strings():
    sp = asc.create_space("nb201")
    s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    a = sp.parse(s)
    assert str(a) == s
    assert a["cell"] == ("nor_conv_3x3",) * 3 + ("skip_connect", "nor_conv_3x3", "nor_conv_1x1")
    assert sp.size() == 5**6
    assert len(sp.neighbors(a)) == 24
    assert sp.encoding_size("path") == 4 + 16 + 64


def test_size_and_enumerate_agree_with_conditions():
    sp = SPACES["conditional"]()
    archs = list(sp.enumerate())
    # a=x: b in 3 values; a=y: c in 4 values
    assert sp.size() == 7 == len(archs) == len(set(archs))
    for a in archs:
        assert (a["b"] is None) == (a["a"] == "y")
        assert (a["c"] is None) == (a["a"] == "x")


def test_stages_size_and_enumerate():
    sp = asc.Space({"s": asc.Stages(n=2, depth=[1, 2], layer={"k": asc.Choice([3, 5])})})
    assert sp.size() == (2 + 4) ** 2
    assert len(set(sp.enumerate())) == 36


def test_infinite_space():
    sp = macro_space()
    assert sp.size() == math.inf
    with pytest.raises(InvalidArchitectureError):
        next(iter(sp.enumerate()))


def test_path_encoding_counts_live_paths():
    sp = asc.create_space("nb201")
    a = sp.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    enc = sp.encode(a, "path")
    assert enc.sum() == 1
    b = sp.parse("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")
    # 4 live input-output paths, but the two of length 2 carry the same op sequence (skip, skip)
    assert sp.encode(b, "path").sum() == 3


def test_config_roundtrip(space):
    again = asc.Space.from_config(space.to_config())
    assert again == space
    a = space.sample(np.random.default_rng(3))
    assert again.parse(str(a)) == a


@pytest.mark.parametrize("text", [
    "", "|nor_conv_3x3~0|", "|foo~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
])
def test_malformed_nb201_strings(text):
    with pytest.raises(InvalidArchitectureError) as e:
        asc.create_space("nb201").parse(text)
    assert "\n" not in str(e.value)


def test_bad_macro_strings():
    sp = macro_space()
    good = str(sp.sample(np.random.default_rng(0)))
    for bad in [good.replace("width=", "wdth="), good + "; width=16", good.replace("kernel=", "kernel:"),
                "width=17", good.replace("optimizer=", "optimiser=")]:
        with pytest.raises(InvalidArchitectureError):
            sp.parse(bad)


@pytest.mark.parametrize("make", [
    lambda: asc.Choice([]),
    lambda: asc.Choice(["a", "a"]),
    lambda: asc.Choice(["a;b"]),
    lambda: asc.Int(3, 1),
    lambda: asc.Float(1.0, 1.0),
    lambda: asc.Float(0.0, 1.0, log=True),
    lambda: asc.Cell(nodes=1, ops=["a"]),
    lambda: asc.Cell(nodes=3, ops=["a", "a"]),
    lambda: asc.Stages(n=0, depth=[1], layer={"k": asc.Choice([3])}),
    lambda: asc.Stages(n=1, depth=[1], layer={}),
    lambda: asc.Space({}),
    lambda: asc.Space({"b": asc.Int(0, 1, when={"a": 1}), "a": asc.Int(0, 1)}),
    lambda: asc.Space({"a": asc.Int(0, 1), "b": asc.Int(0, 1, when={"a": 5})}),
])
def test_bad_declarations(make):
    with pytest.raises(ConfigError):
        make()


def test_unknown_space_name():
    with pytest.raises(asc.UnknownNameError, match="nb201"):
        asc.create_space("nb210")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(SPACES)))
def test_property_parse_str_identity_and_moves(seed, name):
    sp = SPACES[name]()
    rng = np.random.default_rng(seed)
    a = sp.sample(rng)
    assert sp.parse(str(a)) == a
    b = sp.mutate(a, rng)
    assert b != a and sp.parse(str(b)) == b
    c = sp.crossover(a, b, rng)
    assert sp.parse(str(c)) == c


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_property_parser_never_crashes(text):
    for name in ("nb201", "macro"):
        sp = SPACES[name]()
        try:
            a = sp.parse(text)
        except InvalidArchitectureError:
            continue
        assert sp.parse(str(a)) == a


def test_float_moves_stay_in_bounds():
    p = asc.Float(1e-4, 1e-1, log=True)
    rng = np.random.default_rng(0)
    for u in (0.0, 1.0, 1.2, -0.3):
        assert 1e-4 <= p._from_unit(u) <= 1e-1
    v = 0.1
    for _ in range(200):
        v = p.mutate(v, rng)
        assert p.parse(p.format(v)) == v
    with pytest.raises(InvalidArchitectureError, match=r"not in \["):
        p.parse("0.2")
