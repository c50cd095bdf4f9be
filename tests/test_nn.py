"""archscout.nn: op library, builders, seeding, ONNX export and parity."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import archscout as asc  # noqa: E402
from archscout.errors import BuildError, ConfigError, UnknownNameError  # noqa: E402
from archscout.nn import (  # noqa: E402
    ModelFactory,
    build_model,
    create_op,
    export_onnx,
    list_builders,
    list_ops,
    onnx_parity,
    register_builder,
)

TOL = 1e-4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train_step(model: torch.nn.Module, shape: tuple[int, ...], classes: int = 10) -> None:
    """One SGD step on a random batch of 2; checks the logits' shape and that every parameter gets a grad."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, classes)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1]))
    opt.zero_grad()
    loss.backward()
    assert torch.isfinite(loss)
    opt.step()


def _parity(model: torch.nn.Module, shape: tuple[int, ...], tmp_path, name: str = "m.onnx") -> float:
    path = export_onnx(model, tmp_path / name, shape)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    return onnx_parity(model, path, x)


# --- import ------------------------------------------------------------------------------------------
def test_import_archscout_does_not_import_torch():
    code = "import archscout, sys; assert 'torch' not in sys.modules and 'archscout.nn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- ops -----------------------------------------------------------------------------------------------
OPS = [
    "conv3x3", "conv5x5", "nor_conv_1x1", "nor_conv_3x3", "dwsep3x3", "dwsep5x5", "mbconv_k3_e1",
    "mbconv_k3_e4", "mbconv_k5_e6_se", "mbconv_k3_e3_se_hs", "maxpool3x3", "avgpool3x3", "avg_pool_3x3",
    "identity", "skip_connect", "skip", "zero", "none", "attn1", "attn2",
]
OPS += sorted(set(list_ops()) - set(OPS))          # every family's example, whatever is added later
# (C_in, C_out, stride, H): plain, stride 2 on an odd size with a channel change, channel change only
CONFIGS = [(8, 8, 1, 8), (8, 16, 2, 7), (4, 8, 1, 6)]


def test_list_ops_examples_build():
    ops = list_ops()
    assert {"conv3x3", "nor_conv_3x3", "dwsep3x3", "mbconv_k3_e4_se", "maxpool3x3", "avgpool3x3", "avg_pool_3x3",
            "skip_connect", "none", "attn2"} <= set(ops)
    for name in ops:
        assert isinstance(create_op(name, 4, 4), torch.nn.Module)


@pytest.mark.parametrize("name", OPS)
def test_op_forward_backward_export(name, tmp_path):
    for c_in, c_out, stride, h in CONFIGS:
        op = create_op(name, c_in, c_out, stride)
        x = torch.randn(2, c_in, h, h, requires_grad=True)
        y = op(x)
        side = -(-h // stride)
        assert y.shape == (2, c_out, side, side), (name, c_in, c_out, stride)
        y.square().sum().backward()                                   # trains (BN statistics move too)
        assert x.grad is not None
        d = _parity(op, (c_in, h, h), tmp_path, f"{name}_{c_in}_{c_out}_{stride}.onnx")
        assert d <= TOL, (name, c_in, c_out, stride, d)


def test_zero_op_outputs_zeros_and_identity_is_identity():
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(create_op("none", 8, 16, 2)(x), torch.zeros(2, 16, 3, 3))
    assert torch.equal(create_op("skip_connect", 8, 8, 1)(x), x)


def test_mbconv_residual_only_when_shape_kept():
    assert create_op("mbconv_k3_e4", 8, 8, 1).residual
    assert not create_op("mbconv_k3_e4", 8, 8, 2).residual
    assert not create_op("mbconv_k3_e4", 8, 16, 1).residual


@pytest.mark.parametrize("name, msg", [
    ("conv4x4", "odd"), ("sepconv3x3", "unknown op"), ("conv3x5", "unknown op"), ("mbconv_k3_e0", "expand"),
])
def test_bad_op_names(name, msg):
    with pytest.raises(BuildError, match=msg):
        create_op(name, 4, 4)


def test_bad_op_arguments():
    with pytest.raises(BuildError, match="stride"):
        create_op("conv3x3", 4, 4, stride=3)
    with pytest.raises(BuildError, match="channels"):
        create_op("conv3x3", 0, 4)


# --- nb201 -----------------------------------------------------------------------------------------------
def test_nb201_sampled_architectures_train_and_export(tmp_path):
    space = asc.create_space("nb201")
    rng = np.random.default_rng(0)
    for k, shape in enumerate([(1, 8, 8), (1, 8, 8), (3, 28, 28)]):
        arch = space.sample(rng)
        model = build_model(arch, shape, 10, seed=k, C=4, N=1)
        assert model.arch_str == str(arch)
        _train_step(model, shape)
        assert _parity(model, shape, tmp_path, f"nb201_{k}.onnx") <= TOL


def test_nb201_structure_matches_the_benchmark():
    arch = asc.create_space("nb201").parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )
    model = build_model(arch, (3, 32, 32), 10)                            # C=16, N=5 as in NB201
    # NB201 reports 0.8 M parameters for its best-known CIFAR-10 cells of this kind
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n_params < 1.2e6
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert isinstance(model, torch.fx.GraphModule)
    assert {type(m).__module__.split(".")[0] for m in model.modules()} == {"torch"}


def test_nb201_parameter_counts_match_the_table(nb201_table):
    import csv

    space = asc.create_space("nb201")
    with open(nb201_table, newline="") as f:
        rows = [r for _, r in zip(range(400), csv.DictReader(f))][::80]
    for row in rows:
        model = build_model(space.parse(row["arch_str"]), (3, 32, 32), 10, seed=None)
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(float(row["params_MB"]), abs=1e-6)


def test_nb201_builder_accepts_any_library_op_in_a_cell(tmp_path):
    space = asc.Space({"cell": asc.Cell(3, ["attn2", "dwsep3x3", "mbconv_k3_e3_se", "conv3x3"])}, name="nb201")
    arch = space.parse("|attn2~0|+|mbconv_k3_e3_se~0|dwsep3x3~1|")
    model = build_model(arch, (1, 8, 8), 3, C=4, N=1)
    _train_step(model, (1, 8, 8), classes=3)
    assert _parity(model, (1, 8, 8), tmp_path) <= TOL


def test_nb201_too_small_input():
    arch = asc.create_space("nb201").sample(np.random.default_rng(0))
    with pytest.raises(BuildError, match="at least 4x4"):
        build_model(arch, (1, 3, 3), 10, C=4, N=1)


# --- mbv3 ---------------------------------------------------------------------------------------------------
SMALL = {"widths": (8, 8, 16, 16, 24)}


def test_mbv3_sampled_architectures_train_and_export(tmp_path):
    space = asc.create_space("mbv3")
    rng = np.random.default_rng(0)
    for k, (shape, opts) in enumerate([((1, 8, 8), {}), ((1, 28, 28), SMALL), ((3, 32, 32), SMALL)]):
        arch = space.sample(rng)
        model = build_model(arch, shape, 10, seed=k, **opts)
        _train_step(model, shape)
        assert _parity(model, shape, tmp_path, f"mbv3_{k}.onnx") <= TOL


def test_mbv3_stride_schedule_adapts_to_the_input():
    from archscout.nn.macro import stride_schedule

    assert stride_schedule(224, 224, 5) == (2, 2, 2, 2, 1, 2)          # OFA: 224 -> 7
    assert stride_schedule(32, 32, 5) == (1, 2, 2, 2, 1, 1)            # 32 -> 4
    assert stride_schedule(28, 28, 5) == (1, 2, 2, 2, 1, 1)            # 28 -> 4
    assert stride_schedule(8, 8, 5) == (1, 2, 2, 1, 1, 1)              # 8 -> 2
    assert stride_schedule(1, 1, 5) == (1,) * 6


def test_mbv3_options_and_errors():
    arch = asc.create_space("mbv3").sample(np.random.default_rng(1))
    model = build_model(arch, (1, 8, 8), 10, widths=(8, 8, 16, 16, 24), stem_width=8, use_se=False, head_width=32)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(BuildError, match="1x1"):
        build_model(arch, (1, 4, 4), 10, strides=(2, 2, 2, 2, 1, 1))
    with pytest.raises(BuildError, match="strides needs 6"):
        build_model(arch, (1, 8, 8), 10, strides=(2, 2))
    with pytest.raises(BuildError, match="one value per stage"):
        build_model(arch, (1, 8, 8), 10, widths=(8, 8))
    with pytest.raises(BuildError, match="no option"):
        build_model(arch, (1, 8, 8), 10, C=4)


def test_mbv3_four_stage_space():
    space = asc.create_space("mbv3", stages=4, depths=(1, 2))
    model = build_model(space.sample(np.random.default_rng(0)), (1, 8, 8), 10)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


# --- seeding -------------------------------------------------------------------------------------------------
def test_seed_determinism_and_global_rng_untouched():
    arch = asc.create_space("nb201").sample(np.random.default_rng(3))
    state = torch.get_rng_state()
    a = build_model(arch, (1, 8, 8), 10, seed=7, C=4, N=1).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)                                             # global state does not matter
    b = build_model(arch, (1, 8, 8), 10, seed=7, C=4, N=1).state_dict()
    c = build_model(arch, (1, 8, 8), 10, seed=8, C=4, N=1).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


# --- user spaces, factories, errors ------------------------------------------------------------------------
def tiny_builder(arch, input_shape, num_classes, hidden=8):
    """A user's own builder: a few lines."""
    c, _h, _w = input_shape
    layers = [create_op(f"conv{arch['kernel']}x{arch['kernel']}", c, arch["width"])]
    layers += [create_op("conv3x3", arch["width"], arch["width"]) for _ in range(arch["depth"] - 1)]
    head = [torch.nn.Linear(arch["width"], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, num_classes)]
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), *head)


def _user_space(name=None):
    return asc.Space({"width": asc.Choice([8, 16]), "kernel": asc.Choice([3, 5]), "depth": asc.Int(1, 3)}, name=name)


def test_user_space_with_own_builder(tmp_path):
    arch = _user_space().sample(np.random.default_rng(0))
    model = build_model(arch, (1, 8, 8), 10, builder=tiny_builder, hidden=4)
    _train_step(model, (1, 8, 8))
    assert _parity(model, (1, 8, 8), tmp_path) <= TOL

    register_builder("test_nn_tiny", tiny_builder)
    assert "test_nn_tiny" in list_builders()
    named = _user_space("test_nn_tiny").sample(np.random.default_rng(0))
    assert build_model(named, (1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match="already registered"):
        register_builder("test_nn_tiny", tiny_builder)


def test_space_without_builder_is_a_clear_error():
    arch = _user_space().sample(np.random.default_rng(0))
    with pytest.raises(BuildError, match="builder=.*register_builder"):
        build_model(arch, (1, 8, 8), 10)
    named = _user_space("nobody_builds_this").sample(np.random.default_rng(0))
    with pytest.raises(BuildError, match="nobody_builds_this"):
        build_model(named, (1, 8, 8), 10)
    with pytest.raises(UnknownNameError, match="nb201"):
        build_model(named, (1, 8, 8), 10, builder="nb21")


def test_bad_shapes_and_classes():
    arch = asc.create_space("nb201").sample(np.random.default_rng(0))
    with pytest.raises(BuildError, match="input_shape"):
        build_model(arch, (8, 8), 10)
    with pytest.raises(BuildError, match="num_classes"):
        build_model(arch, (1, 8, 8), 0)


def test_unknown_op_in_a_cell_names_the_op():
    space = asc.Space({"cell": asc.Cell(2, ["conv3x3", "warp9"])}, name="nb201")
    with pytest.raises(BuildError, match="warp9"):
        build_model(space.parse("|warp9~0|"), (1, 8, 8), 10, C=4, N=1)


def test_model_factory_pickles_and_round_trips():
    space = asc.create_space("nb201")
    arch = space.sample(np.random.default_rng(0))
    factory = ModelFactory(input_shape=(1, 8, 8), num_classes=10, seed=0, C=4, N=1)
    again = pickle.loads(pickle.dumps(factory))
    cfg = factory.to_config()
    assert ModelFactory.from_config(cfg) == factory == again
    a, b = factory(arch).state_dict(), ModelFactory.from_config(cfg)(arch).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    user = ModelFactory((1, 8, 8), 10, builder=tiny_builder, hidden=4)
    assert ModelFactory.from_config(user.to_config()) == user
    assert pickle.loads(pickle.dumps(user))(_user_space().sample(np.random.default_rng(1))) is not None
    with pytest.raises(ConfigError, match="lambda"):
        ModelFactory((1, 8, 8), 10, builder=lambda a, s, n: tiny_builder(a, s, n)).to_config()
    with pytest.raises(BuildError, match="no option"):
        ModelFactory((1, 8, 8), 10, builder="nb201", depth=3)
    with pytest.raises(BuildError, match="input_shape"):
        ModelFactory((8, 8), 10)
    assert ModelFactory() == ModelFactory((1, 8, 8), 10, seed=0)            # digits-sized defaults
    with pytest.raises(ConfigError, match="unknown"):
        ModelFactory.from_config({"input_shap": [1, 8, 8]})


def test_built_model_pickles_without_archscout(tmp_path):
    arch = asc.create_space("nb201").sample(np.random.default_rng(0))
    model = build_model(arch, (1, 8, 8), 10, C=4, N=1).eval()
    torch.save(model, tmp_path / "m.pt")
    code = (
        "import sys, torch; sys.modules['archscout'] = None; "
        f"m = torch.load({str(tmp_path / 'm.pt')!r}, weights_only=False); print(m(torch.zeros(2, 1, 8, 8)).shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "[2, 10]" in out.stdout


def test_export_falls_back_to_dynamo(tmp_path):
    class LegacyHostile(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x):
            if torch.jit.is_tracing():
                raise RuntimeError("not for the TorchScript exporter")
            return self.conv(x).mean(dim=(2, 3))

    model = LegacyHostile()
    assert _parity(model, (1, 6, 6), tmp_path) <= TOL


def test_unexportable_model_is_a_build_error(tmp_path):
    class Bad(torch.nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing() or torch.compiler.is_compiling():
                raise RuntimeError("op 'warp' has no ONNX symbolic")
            return x

    bad = Bad()
    bad.arch_str = "warp-arch"
    with pytest.raises(BuildError, match="warp-arch.*warp"):
        export_onnx(bad, tmp_path / "bad.onnx", (1, 4, 4))
