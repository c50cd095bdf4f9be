"""archscout.supernet.stages: the Once-for-All supernet of stage spaces (weight slicing, kernel transforms,
extraction parity, channel sorting, sampling)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from archscout.errors import BuildError, ConfigError, InvalidArchitectureError  # noqa: E402
from archscout.nn.macro import MBV3Network, build_mbv3  # noqa: E402
from archscout.nn.ops import make_divisible  # noqa: E402
from archscout.space import Choice, Ordinal, Space, Stages  # noqa: E402
from archscout.space.builtin import mbv3, nb201  # noqa: E402
from archscout.supernet.stages import (  # noqa: E402
    StageSupernet,
    _DynamicBatchNorm2d,
    _DynamicDepthwise,
    _DynamicMBConv,
)

SHAPE = (3, 8, 8)
ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _small_space() -> Space:
    return mbv3(stages=3)


def _odd_space() -> Space:
    """No width_mult, layer keys in the other order, expand 1 allowed, stages may be empty."""
    return Space({"stages": Stages(n=3, depth=Ordinal([0, 1, 2]),
                                   layer={"expand": Ordinal([1, 2]), "kernel": Choice([5, 3])})})


def _perturb(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial batch-norm statistics and affine parameters, and kernel transforms away from identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.2, generator=g)
            elif isinstance(m, _DynamicDepthwise):
                for p in m.transforms.values():
                    p.add_(0.2 * torch.randn(p.shape, generator=g))


def _train_steps(net: StageSupernet, archs: list, steps: int = 1, batch: int = 4) -> None:
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(steps):
        for a in archs:
            net.set_active(a)
            x = torch.randn(batch, *net.input_shape)
            loss = nn.functional.cross_entropy(net(x), torch.arange(batch) % net.num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()


def _assert_parity(net: StageSupernet, arch, x: torch.Tensor) -> None:
    net.eval()
    net.set_active(arch)
    with torch.no_grad():
        ref = net(x)
        sub = net.extract(arch).eval()
        out = sub(x)
    assert isinstance(sub, MBV3Network)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=1e-5, msg=f"extraction differs for {arch}")


# --- construction ------------------------------------------------------------------------------------
def test_builtin_space() -> None:
    sp = mbv3()
    net = StageSupernet(sp, (3, 16, 16), 10)
    assert net.kind == "stages"
    assert net.elastic_dims() == ("kernel", "depth", "expand", "width")
    assert net.active == net.largest()
    big, small = net.largest(), net.smallest()
    assert big["width_mult"] == 1.2 and all(len(s) == 4 and set(s) == {(7, 6)} for s in big["stages"])
    assert small["width_mult"] == 1.0 and all(len(s) == 2 and set(s) == {(3, 3)} for s in small["stages"])
    assert isinstance(net.stem_bn, nn.modules.batchnorm._BatchNorm)
    assert sum(isinstance(m, _DynamicMBConv) for m in net.modules()) == 1 + 5 * 4
    json.dumps(net.to_config())
    assert net.options() == {"widths": None, "stem_width": 16, "use_se": True, "head_width": None, "strides": None}
    # the supernet holds at least every sub-network's weights: the largest one's exactly (plus transforms)
    n_transforms = sum(p.numel() for n, p in net.named_parameters() if "transforms" in n)
    n_big = sum(p.numel() for p in build_mbv3(big, (3, 16, 16), 10).parameters())
    assert sum(p.numel() for p in net.parameters()) - n_transforms == n_big
    net.eval()
    for a in (big, small):
        net.set_active(a)
        assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_custom_space_and_options() -> None:
    sp = _odd_space()
    net = StageSupernet(sp, SHAPE, 5, widths=[16, 24, 32], stem_width=8, use_se=[True, False, True],
                        head_width=24, strides=[1, 2, 1, 2])
    assert net.elastic_dims() == ("kernel", "depth", "expand")
    assert net.smallest()["stages"] == ((), (), ())
    opts = net.options()
    assert opts == {"widths": [16, 24, 32], "stem_width": 8, "use_se": [True, False, True], "head_width": 24,
                    "strides": [1, 2, 1, 2]}
    json.dumps(opts)
    net.set_active("(kernel=3,expand=1)/(expand=2,kernel=5)(expand=1,kernel=3)/")  # any key order
    assert net.active is not None and net.active["stages"][1] == ((2, 5), (1, 3))
    with pytest.raises(InvalidArchitectureError):
        net.set_active(mbv3(stages=3).sample(np.random.default_rng(0)))


def test_unsupported_spaces() -> None:
    with pytest.raises(ConfigError, match="stage spaces") as e:
        StageSupernet(nb201(), SHAPE, 10)
    assert "cell" in str(e.value)
    bad_layers = Space({"stages": Stages(n=2, depth=[1, 2], layer={"kernel": Ordinal([3, 5]), "op": Choice(["a"])})})
    with pytest.raises(ConfigError, match="'kernel'"):
        StageSupernet(bad_layers, SHAPE, 10)
    even = Space({"stages": Stages(n=2, depth=[1], layer={"kernel": Ordinal([2, 3]), "expand": Ordinal([3])})})
    with pytest.raises(ConfigError, match="kernels"):
        StageSupernet(even, SHAPE, 10)
    extra = Space({"width_mult": Ordinal([1.0]), "lr": Choice([0.1, 0.2]),
                   "stages": Stages(n=2, depth=[1], layer={"kernel": Ordinal([3]), "expand": Ordinal([3])})})
    with pytest.raises(ConfigError, match="parameters"):
        StageSupernet(extra, SHAPE, 10)
    with pytest.raises(BuildError):
        StageSupernet(_small_space(), SHAPE, 10, strides=[2, 2])
    with pytest.raises(BuildError):
        StageSupernet(mbv3(stages=6), SHAPE, 10)  # 6 stages need widths=


# --- weight inheritance ------------------------------------------------------------------------------
def test_extract_parity_builtin_like() -> None:
    torch.manual_seed(0)
    sp = _small_space()
    net = StageSupernet(sp, SHAPE, 10, head_width=32)
    rng = np.random.default_rng(1)
    _train_steps(net, [net.largest(), net.smallest(), net.sample(rng)])   # real BN statistics
    _perturb(net, 1)
    archs = [net.largest(), net.smallest(),
             sp.make({"width_mult": 1.0, "stages": [[(7, 6), (5, 3), (3, 4), (7, 4)], [(3, 6), (5, 4)],
                                                    [(5, 3), (3, 3), (7, 6)]]}),
             sp.make({"width_mult": 1.2, "stages": [[(3, 3), (5, 6)], [(7, 4), (3, 6), (5, 3), (3, 3)],
                                                    [(3, 4), (7, 3)]]}),
             net.sample(rng)]
    x = torch.randn(3, *SHAPE)
    for a in archs:
        _assert_parity(net, a, x)
        sub = net.extract(a)
        built = build_mbv3(a, SHAPE, 10, head_width=32)
        assert sum(p.numel() for p in sub.parameters()) == sum(p.numel() for p in built.parameters())


def test_extract_parity_empty_stages_and_expand_one() -> None:
    torch.manual_seed(0)
    sp = _odd_space()
    net = StageSupernet(sp, SHAPE, 4, stem_width=8, widths=[8, 16, 16])
    rng = np.random.default_rng(2)
    _train_steps(net, [net.largest(), net.sample(rng)])
    _perturb(net, 2)
    x = torch.randn(2, *SHAPE)
    archs = [net.largest(), net.smallest(),
             sp.make({"stages": [[], [(1, 3), (2, 5)], []]}),     # stage 0's stride moves to stage 1
             sp.make({"stages": [[(2, 3)], [], [(1, 5), (1, 3)]]})] + [net.sample(rng) for _ in range(2)]
    for a in archs:
        _assert_parity(net, a, x)


def test_extract_exports_to_onnx(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from archscout.nn import export_onnx, onnx_parity

    net = StageSupernet(_small_space(), SHAPE, 10)
    _perturb(net, 3)
    sub = net.extract(net.sample(np.random.default_rng(3)))
    path = export_onnx(sub, tmp_path / "sub.onnx", SHAPE)
    assert onnx_parity(sub, path, np.random.default_rng(0).standard_normal((2, *SHAPE))) < 1e-4


# --- dynamic modules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.1, None])
def test_dynamic_batch_norm_updates_the_active_slice(momentum) -> None:
    dyn = _DynamicBatchNorm2d(16, momentum=momentum)
    ref = nn.BatchNorm2d(8, momentum=momentum)
    _perturb(dyn)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(ref, name).copy_(getattr(dyn, name)[:8])
    if momentum is None:   # BN recalibration: cumulative averages from reset statistics
        dyn.reset_running_stats()
        ref.reset_running_stats()
    tail = (dyn.running_mean[8:].clone(), dyn.running_var[8:].clone())
    dyn.train()
    ref.train()
    for _ in range(3):
        x = torch.randn(4, 8, 3, 3)
        torch.testing.assert_close(dyn(x), ref(x))
    torch.testing.assert_close(dyn.running_mean[:8], ref.running_mean)
    torch.testing.assert_close(dyn.running_var[:8], ref.running_var)
    assert not torch.equal(dyn.running_mean[:8], torch.zeros(8))
    assert torch.equal(dyn.running_mean[8:], tail[0]) and torch.equal(dyn.running_var[8:], tail[1])
    dyn.eval()
    ref.eval()
    x = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(dyn(x), ref(x))


def test_recalibrated_statistics_are_extracted() -> None:
    sp = _small_space()
    net = StageSupernet(sp, SHAPE, 10)
    _perturb(net, 4)
    a = net.sample(np.random.default_rng(4))
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    net.set_active(a)
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(4, *SHAPE))
    assert not torch.equal(net.stem_bn.running_mean, torch.zeros_like(net.stem_bn.running_mean))
    _assert_parity(net, a, torch.randn(2, *SHAPE))


def test_elastic_kernel_transform() -> None:
    sp = _small_space()
    net = StageSupernet(sp, SHAPE, 10)
    dw = net.stages[0][0].dw
    assert set(dw.transforms) == {"7to5", "5to3"}
    w7 = dw.conv.weight.detach()[:16]
    # identity transforms: the centre crop
    torch.testing.assert_close(dw.active(16, 3), w7[:, :, 2:5, 2:5])
    t53 = torch.randn(9, 9)
    with torch.no_grad():
        dw.transforms["5to3"].copy_(t53)
    want = (w7[:, :, 2:5, 2:5].reshape(16, 9) @ t53.T).reshape(16, 1, 3, 3)
    torch.testing.assert_close(dw.active(16, 3).detach(), want)
    torch.testing.assert_close(dw.active(16, 5).detach(), w7[:, :, 1:6, 1:6])
    torch.testing.assert_close(dw.active(16, 7).detach(), w7)

    # changing every 5to3 matrix changes the outputs of kernel-3 sub-networks only
    def arch(k: int):
        return sp.make({"width_mult": 1.0, "stages": [[(k, 4)] * 2] * 3})

    x = torch.randn(2, *SHAPE)
    net.eval()
    before = {}
    for k in (3, 5, 7):
        net.set_active(arch(k))
        before[k] = net(x).detach()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _DynamicDepthwise) and "5to3" in m.transforms:
                m.transforms["5to3"].add_(0.5 * torch.randn(9, 9))
    for k in (3, 5, 7):
        net.set_active(arch(k))
        assert torch.equal(net(x), before[k]) == (k != 3)
    _assert_parity(net, arch(3), x)


def test_training_step_touches_only_active_slices() -> None:
    sp = _small_space()
    net = StageSupernet(sp, SHAPE, 10)
    a = sp.make({"width_mult": 1.0, "stages": [[(3, 3)] * 2] * 3})
    net.train()
    net.set_active(a)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(net(torch.randn(4, *SHAPE)), torch.tensor([0, 1, 2, 3]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    widths = [24, 40, 80]
    c_in = 16
    for i, stage in enumerate(net.stages):
        for j, block in enumerate(stage):
            if j >= 2:   # inactive layers: no gradient at all
                assert all(p.grad is None for p in block.parameters())
                continue
            hidden = make_divisible(c_in * 3, 8)
            g = block.dw.conv.weight.grad
            ring = g.clone()
            ring[:, :, 1:6, 1:6] = 0
            assert torch.count_nonzero(ring) == 0, "the 7x7 weight's outer ring got a gradient"
            assert torch.count_nonzero(g[:hidden, :, 2:5, 2:5]) > 0
            assert torch.count_nonzero(g[hidden:]) == 0
            assert block.dw.transforms["7to5"].grad is not None and block.dw.transforms["5to3"].grad is not None
            pg = block.project.conv.weight.grad
            assert torch.count_nonzero(pg[widths[i]:]) == 0 and torch.count_nonzero(pg[:, hidden:]) == 0
            eg = block.expand_conv.conv.weight.grad
            assert torch.count_nonzero(eg[hidden:]) == 0 and torch.count_nonzero(eg[:, c_in:]) == 0
            assert torch.count_nonzero(block.project_bn.weight.grad[widths[i]:]) == 0
            c_in = widths[i]
    # parameters outside the active slices are unchanged by the step
    params = dict(net.named_parameters())
    assert torch.equal(params["stem_conv.weight"][16:], before["stem_conv.weight"][16:])
    assert not torch.equal(params["stem_conv.weight"][:16], before["stem_conv.weight"][:16])
    assert torch.equal(params["stages.2.3.dw.conv.weight"], before["stages.2.3.dw.conv.weight"])
    last = make_divisible(6 * 80, 8)
    assert torch.equal(params["classifier.weight"][:, last:], before["classifier.weight"][:, last:])


# --- channel sorting -----------------------------------------------------------------------------------
def test_reorganize_channels_preserves_the_largest_network() -> None:
    torch.manual_seed(5)
    sp = _small_space()
    net = StageSupernet(sp, SHAPE, 10)
    _perturb(net, 5)
    net.eval()
    net.set_active(net.largest())
    x = torch.randn(3, *SHAPE)
    with torch.no_grad():
        before = net(x)
        net.reorganize_channels()
        after = net(x)
    torch.testing.assert_close(after, before, atol=ATOL, rtol=1e-5)
    for block in net.modules():
        if isinstance(block, _DynamicMBConv) and block.expand_conv is not None:
            imp = block.project.conv.weight.detach().abs().sum(dim=(0, 2, 3))
            assert torch.all(imp[:-1] >= imp[1:])
            if block.se is not None:
                se_imp = block.se.expand.conv.weight.detach().abs().sum(dim=(0, 2, 3))
                assert torch.all(se_imp[:-1] >= se_imp[1:])
    _assert_parity(net, net.sample(np.random.default_rng(5)), x)


# --- sampling ------------------------------------------------------------------------------------------
def test_sample_elastic_dims() -> None:
    sp = mbv3()
    net = StageSupernet(sp, (3, 16, 16), 10)
    rng = np.random.default_rng(6)
    kernels = set()
    for _ in range(5):
        a = net.sample(rng, elastic=("kernel",))
        assert a["width_mult"] == 1.2
        assert all(len(s) == 4 and all(e == 6 for _, e in s) for s in a["stages"])
        kernels |= {k for s in a["stages"] for k, _ in s}
    assert kernels == {3, 5, 7}
    assert net.sample(rng, elastic=()) == net.largest()
    seen = {"depth": set(), "width": set(), "expand": set()}
    for _ in range(10):
        a = net.sample(rng, elastic=["depth", "expand", "width"])
        assert all(k == 7 for s in a["stages"] for k, _ in s)
        seen["depth"] |= {len(s) for s in a["stages"]}
        seen["expand"] |= {e for s in a["stages"] for _, e in s}
        seen["width"].add(a["width_mult"])
    assert seen == {"depth": {2, 3, 4}, "width": {1.0, 1.2}, "expand": {3, 4, 6}}
    a = net.sample(rng)
    assert sp.validate(a) == a
    with pytest.raises(ConfigError):
        net.sample(rng, elastic=("kernel", "resolution"))
