"""Property-based tests (hypothesis) of spaces, their string forms and the parsers of user text.

Every registered space and a few declared ones (scalars, cells, stages of variable depth, nested
conditions) must satisfy: ``parse(str(a)) == a``; moves (mutation, neighbours, crossover) stay in the space;
encodings have the space's fixed length. Parsers given arbitrary text either succeed or raise an
:class:`~archscout.errors.ArchscoutError`, never another exception.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archscout as asc
from archscout.errors import ArchscoutError, ConfigError, InvalidArchitectureError, StorageError
from archscout.objectives import Constraint, Objective, parse_constraints, parse_objectives
from archscout.space import Float, create_space, list_spaces
from archscout.space.params import RESERVED_CHARS
from archscout.space.space import ENCODINGS

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _declared() -> dict[str, asc.Space]:
    return {
        "scalars": asc.Space({
            "act": asc.Choice(["relu", "gelu", "swish"]),
            "depth": asc.Ordinal([1, 2, 4, 8]),
            "width": asc.Int(16, 128, step=16),
            "lr": asc.Float(1e-4, 1e-1, log=True),
            "drop": asc.Float(0.0, 0.5),
            "mult": asc.Choice([0.5, 1.0, 1.5]),
        }),
        "cell5": asc.Space({"cell": asc.Cell(nodes=5, ops=["none", "skip", "conv3", "pool"])}),
        "stages": asc.Space({
            "stages": asc.Stages(n=3, depth=asc.Ordinal([0, 1, 3]),
                                 layer={"k": asc.Choice([3, 5]), "e": asc.Ordinal([2, 4, 6])}),
            "head": asc.Choice(["avg", "max"]),
        }),
        "conditional": asc.Space({
            "block": asc.Choice(["conv", "cell", "none"]),
            "k": asc.Ordinal([1, 3, 5], when={"block": "conv"}),
            "groups": asc.Int(1, 4, when={"block": "conv", "k": [3, 5]}),
            "alpha": asc.Float(0.1, 0.9, when={"k": 5}),
            "cell": asc.Cell(nodes=3, ops=["zero", "identity", "conv"], when={"block": "cell"}),
            "opt": asc.Choice(["sgd", "adam"]),
        }),
        "digits": asc.Space({"c": asc.DigitCell(nodes=4, ops=["none", "skip", "a", "b"], prefix="net-")}),
        "skeleton": asc.Space({"s": asc.Skeleton(modules=(2, 3), doublings=(0, 1), downsamplings=(1, 2))}),
        "linkops": asc.Space({"g": asc.LinkOps(links=["000", "001", "012"], ops=["a", "b", "skip"]),
                              "lr": asc.Float(0.01, 0.1)}),
        "one_point": asc.Space({"only": asc.Choice(["x"]), "n": asc.Int(2, 2)}),
    }


@functools.cache
def spaces() -> dict[str, asc.Space]:
    out = {f"registered:{n}": create_space(n) for n in list_spaces()}
    out.update(_declared())
    return out


NAMES = sorted(spaces())
space_names = st.sampled_from(NAMES)
seeds = st.integers(0, 2**32 - 1)


def _valid(space: asc.Space, a: asc.Architecture) -> None:
    """``a`` belongs to ``space``: it survives validation and its string parses back to it."""
    assert space.validate(a.to_dict()) == a
    b = space.parse(str(a))
    assert b == a and hash(b) == hash(a) and str(b) == str(a)


def test_every_registered_space_is_covered():
    assert set(list_spaces()) <= {n.split(":", 1)[1] for n in NAMES if n.startswith("registered:")}
    assert list_spaces(), "no registered space"


# --- string form ---------------------------------------------------------------------------------------
@SETTINGS
@given(name=space_names, seed=seeds)
def test_parse_str_is_identity(name, seed):
    sp = spaces()[name]
    a = sp.sample(np.random.default_rng(seed))
    b = sp.parse(str(a))
    assert b == a
    assert str(b) == str(a)
    assert str(sp.parse(str(b))) == str(a)
    assert b.functional_hash() == a.functional_hash()
    assert hash(b) == hash(a)
    assert sp.validate(a.to_dict()) == a
    again = asc.Space.from_config(json.loads(json.dumps(sp.to_config())))  # a rebuilt space reads the same strings
    c = again.parse(str(a))
    assert c == a and c.functional_hash() == a.functional_hash()


# --- moves ---------------------------------------------------------------------------------------------
@SETTINGS
@given(name=space_names, seed=seeds)
def test_mutate_stays_valid_and_moves(name, seed):
    sp = spaces()[name]
    rng = np.random.default_rng(seed)
    a = sp.sample(rng)
    for _ in range(3):
        b = sp.mutate(a, rng)
        _valid(sp, b)
        if sp.size() > 1:
            assert b != a, f"mutate returned its input in a space of {sp.size()} points"
        else:
            assert b == a
        a = b


@FEW
@given(name=space_names, seed=seeds)
def test_neighbors_are_valid_distinct_and_new(name, seed):
    sp = spaces()[name]
    a = sp.sample(np.random.default_rng(seed))
    nb = sp.neighbors(a)
    assert a not in nb
    assert len(set(nb)) == len(nb)
    assert len({str(b) for b in nb}) == len(nb)
    if sp.size() > 1:
        assert nb
    for b in nb:
        _valid(sp, b)


@SETTINGS
@given(name=space_names, seed=seeds)
def test_crossover_gives_valid_children(name, seed):
    sp = spaces()[name]
    rng = np.random.default_rng(seed)
    a, b = sp.sample(rng), sp.sample(rng)
    for _ in range(3):
        _valid(sp, sp.crossover(a, b, rng))


@SETTINGS
@given(seed=seeds, low=st.floats(-1e6, 1e6), width=st.floats(1e-6, 1e6), log=st.booleans())
def test_float_crossover_of_equal_parents_is_the_parent(seed, low, width, log):
    if log:
        low = abs(low) + 1e-6
    assume(low + width > low)
    p = Float(low, low + width, log=log)
    rng = np.random.default_rng(seed)
    v = p.sample(rng)
    assert p.crossover(v, v, rng) == v
    assert p.validate(p.crossover(v, p.sample(rng), rng)) is not None


# --- encodings -----------------------------------------------------------------------------------------
@SETTINGS
@given(name=space_names, seed=seeds)
def test_encodings_have_fixed_length_and_are_finite(name, seed):
    sp = spaces()[name]
    rng = np.random.default_rng(seed)
    for a in (sp.sample(rng), sp.sample(rng)):
        for kind in ENCODINGS:
            x = sp.encode(a, kind)
            assert x.shape == (sp.encoding_size(kind),)
            assert np.isfinite(x).all()


@FEW
@given(name=space_names, seed=seeds)
def test_hash_and_functional_encoding_depend_on_the_values_only(name, seed):
    sp = spaces()[name]
    a = sp.sample(np.random.default_rng(seed))
    twin = sp.make(a.to_dict())
    assert twin.functional_hash() == a.functional_hash()
    assert twin.encode("functional").tolist() == a.encode("functional").tolist()


scalar_options = st.lists(
    st.one_of(st.integers(-5, 5), st.floats(allow_nan=True), st.booleans(), st.none(),
              st.text(alphabet=st.sampled_from(list("ab1.- ;=()é") + ["\n"]), max_size=4)),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(options=scalar_options, ordinal=st.booleans())
def test_declared_choices_are_consistent(options, ordinal):
    """A Choice/Ordinal is either refused with ConfigError or has distinct options, each of which is an
    architecture of its own that survives the string round trip."""
    try:
        p = (asc.Ordinal if ordinal else asc.Choice)(options)
    except ConfigError as e:
        assert str(e)
        return
    sp = asc.Space({"c": p, "n": asc.Int(0, 1)})
    archs = [sp.make({"c": o, "n": 0}) for o in options]
    assert len(set(archs)) == len(options) == sp.size() / 2
    for a in archs:
        _valid(sp, a)
    assert json.loads(json.dumps(sp.to_config())) == sp.to_config()


def test_size_of_small_declared_spaces_matches_enumeration():
    for name in ("cell5", "conditional", "digits", "skeleton", "one_point"):
        sp = spaces()[name]
        if not sp.is_finite():
            continue
        archs = list(sp.enumerate())
        assert len(archs) == len(set(archs)) == sp.size(), name


# --- parsers on arbitrary text -------------------------------------------------------------------------
def _parse_or_error(sp: asc.Space, text: str) -> None:
    try:
        a = sp.parse(text)
    except InvalidArchitectureError as e:
        msg = str(e)
        assert msg
        if "\n" not in text:
            assert "\n" not in msg  # one line (texts with newlines may be quoted as they are)
        return
    _valid(sp, a)


ALPHABET = st.sampled_from(sorted(RESERVED_CHARS) + list("0123456789abcnorvx_-.:e ") + ["\n", "\x00", "é", "٣"])


@settings(max_examples=80, deadline=None)
@given(name=space_names, text=st.text(max_size=60))
def test_parse_arbitrary_text(name, text):
    _parse_or_error(spaces()[name], text)


@st.composite
def edited_strings(draw):
    """A valid architecture string with a few characters deleted, inserted or replaced."""
    name = draw(space_names)
    sp = spaces()[name]
    text = str(sp.sample(np.random.default_rng(draw(seeds))))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        i = draw(st.integers(0, len(text)))
        c = draw(ALPHABET)
        if op == "delete":
            text = text[:i] + text[i + 1:]
        elif op == "insert":
            text = text[:i] + c + text[i:]
        elif op == "replace":
            text = text[:i] + c + text[i + 1:]
        else:
            text = text[:i] + text[i:i + 3] + text[i:]
    return name, text


@settings(max_examples=150, deadline=None)
@given(case=edited_strings())
def test_parse_edited_valid_strings(case):
    name, text = case
    _parse_or_error(spaces()[name], text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-10**400, 10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None)
@given(name=space_names, seed=seeds, data=st.data())
def test_make_with_arbitrary_values(name, seed, data):
    """``space.make`` given any JSON-like value for one parameter: a valid architecture or
    InvalidArchitectureError."""
    sp = spaces()[name]
    values = sp.sample(np.random.default_rng(seed)).to_dict()
    key = data.draw(st.sampled_from(sorted(values)))
    values[key] = data.draw(json_values)
    try:
        a = sp.make(values)
    except InvalidArchitectureError:
        return
    _valid(sp, a)


# --- objectives and constraints ------------------------------------------------------------------------
constraint_text = st.one_of(
    st.text(max_size=20),
    st.tuples(st.text(alphabet="ab_ <>=", max_size=4), st.sampled_from(["<=", ">=", "<", ">", "=", "=<", "=="]),
              st.one_of(st.floats().map(repr), st.text(alphabet="0123456789.e-+naif ", max_size=6))).map("".join),
)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(constraint_text, max_size=3))
def test_parse_constraints_arbitrary_text(texts):
    try:
        out = parse_constraints(texts)
    except ConfigError as e:
        assert str(e)
        return
    assert len(out) == len(texts)
    for c in out:
        assert isinstance(c, Constraint) and c.name == c.name.strip() and c.name
        assert math.isfinite(c.bound) and c.op in ("<=", ">=", "<", ">")
        # round trip through the string form
        assert parse_constraints([f"{c.name}{c.op}{c.bound!r}"]) == (c,)


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_parse_objectives_and_constraints_arbitrary_values(value):
    for parse, kind in ((parse_objectives, Objective), (parse_constraints, Constraint)):
        try:
            out = parse(value)
        except ConfigError:
            continue
        assert isinstance(out, tuple) and all(isinstance(x, kind) for x in out)


# --- storage URLs --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _in_temp_dir():
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            yield d
        finally:
            os.chdir(old)


_SAFE_PATH = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20).filter(
    lambda t: ".." not in t and not t.startswith(("/", "~", "\\")) and "\x00" not in t
)
storage_urls = st.one_of(  # (never a PostgreSQL URL: that would try to connect)
    st.tuples(st.text(max_size=10), st.just("://"), st.text(max_size=10)).map("".join).filter(
        lambda t: not t.startswith("sqlite://") and not t.lower().startswith("postgres")),
    st.tuples(st.just("sqlite://"), _SAFE_PATH).map("".join),
    _SAFE_PATH.filter(lambda t: "://" not in t),
)


@FEW
@given(url=storage_urls)
def test_create_storage_arbitrary_urls(url):
    """A storage URL opens (in a scratch folder) or raises StorageError / another ArchscoutError."""
    from archscout.storage import create_storage

    with _in_temp_dir():
        try:
            s = create_storage(url)
        except ArchscoutError as e:
            assert str(e)
            return
        try:
            assert s.study_names() == []
        finally:
            s.close()


def test_create_storage_odd_arguments():
    from archscout.storage import create_storage

    with _in_temp_dir():
        for url in ("a\x00b.db", "sqlite:///a\x00b.db", 5):
            with pytest.raises(StorageError):
                create_storage(url)  # type: ignore[arg-type]
