"""Workloads for the systolic-array model (:mod:`archscout.hardware.systolic`): SCALE-Sim topology CSV files,
layers traced from a ``torch.nn.Module``, and built-in ResNet-18 / MobileNetV2 at 224 x 224.

Padding is folded into the ifmap dims and the rows/cols a strided window never reaches are dropped, so that
SCALE-Sim's ``ceil`` ofmap formula gives exactly the network's output size:
``ifmap = (out - 1) * stride + effective_filter`` with ``effective_filter = dilation * (kernel - 1) + 1``.

Grouped convolutions: SCALE-Sim's conv CSV has no groups column. A layer whose name contains ``DP`` is
depthwise for SCALE-Sim (it runs one layer per channel, each with 1 channel and ``Num Filter`` filters), so
:func:`read_topology` reads it as ``groups = channels`` with ``channels * Num Filter`` filters, and
:func:`write_topology` writes depthwise layers that way; other grouped layers are written as one row per group.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any

from .._torch import torch_threads
from ..errors import ConfigError, DataError, require
from .systolic import ConvLayer

__all__ = ["builtin_workload", "list_builtin_workloads", "load_workload_cache", "read_topology", "save_workload_cache",
           "trace_workload", "workload_of", "write_topology"]

_CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                 "Num Filter", "Strides")
_GEMM_COLUMNS = ("Layer", "M", "N", "K")


# --- SCALE-Sim CSV --------------------------------------------------------------------------------------------
def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.split(",")]
    while parts and (parts[-1] == "" or parts[-1].startswith("#")):
        parts.pop()  # trailing comma (SCALE-Sim's format) and "#dw"-style comments
    return parts


def read_topology(path: str | os.PathLike) -> list[ConvLayer]:
    """Layers of a SCALE-Sim topology CSV, in file order.

    Two formats, told apart by the header: conv (``Layer name, IFMAP Height, IFMAP Width, Filter Height,
    Filter Width, Channels, Num Filter, Strides,`` with an optional dense sparsity column ``1:1``) and GEMM
    (``Layer, M, N, K,``: an ``M x K`` by ``K x N`` product). Trailing commas and ``#`` comments are allowed;
    blank lines are skipped.

    Raises:
        ConfigError: the file is missing or empty, or a row is malformed; the message names the file, the line
            and the column.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise ConfigError(f"{p}: no such topology file (give a SCALE-Sim topology CSV path)")
    with open(p, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not rows:
        raise ConfigError(f"{p}: the topology file is empty (expected a header and one row per layer)")
    header = _fields(rows[0][1])
    gemm = len(header) >= 2 and header[1].upper() == "M"
    columns = _GEMM_COLUMNS if gemm else _CONV_COLUMNS
    layers: list[ConvLayer] = []
    for lineno, line in rows[1:]:
        fields = _fields(line)
        where = f"{p}:{lineno}"
        if len(fields) < len(columns):
            raise ConfigError(f"{where}: expected {len(columns)} columns ({', '.join(columns)}), got {len(fields)}; "
                              "complete the row")
        extra = fields[len(columns):]
        if extra and not (len(extra) == 1 and extra[0].replace(" ", "") in ("1:1", "")):
            raise ConfigError(f"{where}: unexpected columns {extra} after {columns[-1]!r} (only a dense sparsity "
                              "ratio 1:1 is supported); remove them")
        name = fields[0]
        if not name:
            raise ConfigError(f"{where}: column 1 ({columns[0]}) is empty; name the layer")
        nums = []
        for col, (label, text) in enumerate(zip(columns[1:], fields[1:len(columns)], strict=True), start=2):
            try:
                v = int(text)
            except ValueError:
                v = 0
            if v < 1:
                raise ConfigError(f"{where}: column {col} ({label}) must be a positive integer, got {text!r}; "
                                  "fix the value")
            nums.append(v)
        try:
            if gemm:
                m, n, k = nums
                layers.append(ConvLayer.from_gemm(name, m, k, n))
            else:
                h, w, fh, fw, c, nf, s = nums
                if "DP" in name:
                    layers.append(ConvLayer(name, h, w, fh, fw, c, c * nf, s, s, groups=c))
                else:
                    layers.append(ConvLayer(name, h, w, fh, fw, c, nf, s, s))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    if not layers:
        raise ConfigError(f"{p}: the topology file has a header but no layer rows")
    return layers


def write_topology(layers: Iterable[ConvLayer], path: str | os.PathLike) -> None:
    """Write ``layers`` as a SCALE-Sim conv topology CSV (trailing commas, one stride column).

    Depthwise layers (one input channel per group) get ``_DP`` appended to their name (unless it contains
    ``DP``) and ``Num Filter`` = filters per group; other grouped layers become one row per group
    (``name_g0``, ``name_g1``, ...).

    Raises:
        ConfigError: a layer has different row and column strides (SCALE-Sim has one stride), or an ungrouped
            layer's name contains ``DP`` (SCALE-Sim would run it as depthwise).
    """
    out = [", ".join(_CONV_COLUMNS) + ",\n"]
    for layer in layers:
        if layer.stride_h != layer.stride_w:
            raise ConfigError(f"layer {layer.name!r}: stride {layer.stride_h}x{layer.stride_w} cannot be written; "
                              "SCALE-Sim's topology has one stride for both dims")
        dims = (layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w)
        cg, fg = layer.channels // layer.groups, layer.num_filters // layer.groups
        if layer.groups == 1:
            if "DP" in layer.name:
                raise ConfigError(f"layer {layer.name!r}: SCALE-Sim treats names containing 'DP' as depthwise; "
                                  "rename the layer")
            rows = [(layer.name, *dims, layer.channels, layer.num_filters)]
        elif cg == 1:
            name = layer.name if "DP" in layer.name else f"{layer.name}_DP"
            rows = [(name, *dims, layer.channels, fg)]
        else:
            rows = [(f"{layer.name}_g{i}".replace("DP", "Dp"), *dims, cg, fg) for i in range(layer.groups)]
        out.extend(", ".join(str(x) for x in (*r, layer.stride_h)) + ",\n" for r in rows)
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        f.writelines(out)


# --- traced from a torch module ------------------------------------------------------------------------------
def _conv_layer(name: str, in_hw: tuple[int, int], out_hw: tuple[int, int], kernel: Sequence[int],
                stride: Sequence[int], dilation: Sequence[int], channels: int, filters: int, groups: int) -> ConvLayer:
    fh, fw = (d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True))
    (oh, ow), (sh, sw) = out_hw, stride
    return ConvLayer(name, (oh - 1) * sh + fh, (ow - 1) * sw + fw, fh, fw, channels, filters, sh, sw, groups)


def trace_workload(module: Any, input_shape: Sequence[int]) -> list[ConvLayer]:
    """The ``nn.Conv2d`` and ``nn.Linear`` layers of one forward pass of ``module`` on a batch of 1, in call
    order. Convs: padding folded into the ifmap, dilation into the filter size, stride and groups kept.
    Linears: a GEMM with ``rows = product of the input's leading dims``. Names are the module names; a module
    called again gets ``#2``, ``#3``, ...

    Args:
        module: a ``torch.nn.Module``.
        input_shape: per-sample input shape, e.g. ``(3, 224, 224)``.

    Raises:
        OptionalDependencyError: torch is missing. ConfigError: the forward pass fails on that input.
    """
    torch = require("torch", "nn")
    nn = torch.nn
    layers: list[ConvLayer] = []
    calls: dict[str, int] = {}
    handles = []

    def hook(mod: Any, inputs: Any, output: Any, _name: str) -> None:
        n = calls[_name] = calls.get(_name, 0) + 1
        name = (_name or type(mod).__name__).replace(",", "_") + (f"#{n}" if n > 1 else "")
        x = inputs[0]
        if isinstance(mod, nn.Conv2d):
            layers.append(_conv_layer(name, tuple(x.shape[-2:]), tuple(output.shape[-2:]), mod.kernel_size,
                                      mod.stride, mod.dilation, mod.in_channels, mod.out_channels, mod.groups))
        else:
            rows = math.prod(int(s) for s in x.shape[:-1]) or 1
            layers.append(ConvLayer.from_gemm(name, rows, mod.in_features, mod.out_features))

    for name, m in module.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(lambda mod, i, o, _n=name: hook(mod, i, o, _n)))
    was_training = module.training
    module.eval()
    try:
        with torch_threads(1), torch.no_grad():  # one thread: small layers run far faster than on busy cores
            module(torch.zeros((1, *(int(s) for s in input_shape))))
    except Exception as e:  # any failure of a user's network is reported the same way
        raise ConfigError(f"forward pass on input (1, {', '.join(map(str, input_shape))}) failed: "
                          f"{type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return layers


_WORKLOAD_CACHE: OrderedDict[tuple, tuple[ConvLayer, ...]] = OrderedDict()
_WORKLOAD_CACHE_SIZE = 2048
_PRELOADED: dict[tuple, tuple[ConvLayer, ...]] = {}


def save_workload_cache(path: str | os.PathLike) -> int:
    """Write every workload traced so far in this process (and those loaded) to a JSON file; returns how many.
    A later process reads it back with :func:`load_workload_cache` instead of tracing the networks again."""
    entries = {**_PRELOADED, **_WORKLOAD_CACHE}
    data = {json.dumps([k[0], list(k[1]), k[2]]): [asdict(layer) for layer in v] for k, v in entries.items()}
    path = os.fspath(path)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)
    return len(data)


def load_workload_cache(path: str | os.PathLike) -> int:
    """Read traced workloads written by :func:`save_workload_cache`; :func:`workload_of` then returns them
    without building the networks (they stay for the process's life, beyond the in-memory cache's size).

    Raises:
        DataError: the file is missing or is not such a file.
    """
    path = os.fspath(path)
    try:
        with open(path) as f:
            data = json.load(f)
        loaded = {tuple(_key(k)): tuple(ConvLayer(**d) for d in v) for k, v in data.items()}
    except FileNotFoundError:
        raise DataError(f"workload cache {path!r} does not exist; write one with save_workload_cache") from None
    except (ValueError, TypeError, KeyError, ConfigError) as e:
        raise DataError(f"{path!r} is not a workload cache written by save_workload_cache: {e}") from None
    _PRELOADED.update(loaded)
    return len(loaded)


def _key(text: str) -> tuple:
    factory, shape, fhash = json.loads(text)
    return (factory, tuple(shape), fhash)


def workload_of(arch: Any, factory: Callable[[Any], Any], input_shape: Sequence[int]) -> list[ConvLayer]:
    """:func:`trace_workload` of ``factory(arch)``, cached per (factory config, input shape, functional hash)
    like :func:`archscout.hardware.analytic.model_stats`.

    Raises:
        as :func:`trace_workload`.
    """
    from .base import factory_key

    key = (factory_key(factory), tuple(int(s) for s in input_shape), arch.functional_hash())
    if key in _PRELOADED:
        return list(_PRELOADED[key])
    hit = _WORKLOAD_CACHE.get(key)
    if hit is None:
        hit = tuple(trace_workload(factory(arch), input_shape))
        _WORKLOAD_CACHE[key] = hit
        if len(_WORKLOAD_CACHE) > _WORKLOAD_CACHE_SIZE:
            _WORKLOAD_CACHE.popitem(last=False)
    else:
        _WORKLOAD_CACHE.move_to_end(key)
    return list(hit)


# --- built-in networks ---------------------------------------------------------------------------------------
def _conv(name: str, hw: int, k: int, s: int, p: int, cin: int, cout: int, groups: int = 1) -> tuple[ConvLayer, int]:
    out = (hw + 2 * p - k) // s + 1
    return _conv_layer(name, (hw, hw), (out, out), (k, k), (s, s), (1, 1), cin, cout, groups), out


def _resnet18(size: int) -> list[ConvLayer]:
    layer, hw = _conv("conv1", size, 7, 2, 3, 3, 64)
    layers = [layer]
    hw = (hw + 2 - 3) // 2 + 1  # max pool 3x3, stride 2, padding 1
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            s = 2 if stage > 1 and block == 0 else 1
            pre = f"layer{stage}.{block}"
            c1, out = _conv(f"{pre}.conv1", hw, 3, s, 1, cin, cout)
            c2, _ = _conv(f"{pre}.conv2", out, 3, 1, 1, cout, cout)
            layers += [c1, c2]
            if s != 1 or cin != cout:
                layers.append(_conv(f"{pre}.downsample.0", hw, 1, s, 0, cin, cout)[0])
            hw, cin = out, cout
    layers.append(ConvLayer.from_gemm("fc", 1, 512, 1000))
    return layers


def _mobilenetv2(size: int) -> list[ConvLayer]:
    layer, hw = _conv("features.0.0", size, 3, 2, 1, 3, 32)
    layers, cin, idx = [layer], 32, 1
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        for i in range(n):
            stride, hidden, pre, j = (s if i == 0 else 1), cin * t, f"features.{idx}.conv", 0
            if t != 1:
                layers.append(_conv(f"{pre}.0.0", hw, 1, 1, 0, cin, hidden)[0])
                j = 1
            dw, out = _conv(f"{pre}.{j}.0", hw, 3, stride, 1, hidden, hidden, groups=hidden)
            layers += [dw, _conv(f"{pre}.{j + 1}", out, 1, 1, 0, hidden, c)[0]]
            hw, cin, idx = out, c, idx + 1
    layers.append(_conv(f"features.{idx}.0", hw, 1, 1, 0, cin, 1280)[0])
    layers.append(ConvLayer.from_gemm("classifier.1", 1, 1280, 1000))
    return layers


_BUILTINS: dict[str, Callable[[int], list[ConvLayer]]] = {"resnet18": _resnet18, "mobilenetv2": _mobilenetv2}


def list_builtin_workloads() -> list[str]:
    """Names accepted by :func:`builtin_workload`."""
    return sorted(_BUILTINS)


def builtin_workload(name: str, image_size: int = 224) -> list[ConvLayer]:
    """The conv and linear layers of torchvision's ``resnet18`` or ``mobilenet_v2`` on a ``3 x image_size x
    image_size`` image, computed from the architectures' definitions (layer names as torchvision's modules).

    Raises:
        ConfigError: an unknown name or an image size below 32.
    """
    if name not in _BUILTINS:
        raise ConfigError(f"unknown workload {name!r}; choose one of {', '.join(list_builtin_workloads())}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32:
        raise ConfigError(f"image_size must be an integer >= 32, got {image_size!r}")
    return _BUILTINS[name](image_size)
