"""ONNX export and a PyTorch-vs-onnxruntime parity check."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import BuildError, require

__all__ = ["export_onnx", "onnx_parity"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation/tracer warnings and their console chatter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


@contextlib.contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _describe(model: nn.Module) -> str:
    arch = getattr(model, "arch_str", None)
    return f"architecture {arch!r}" if arch else f"model {type(model).__name__}"


def export_onnx(model: nn.Module, path: str | os.PathLike, input_shape: Sequence[int], batch_size: int = 1,
                opset: int = 17) -> str:
    """Export ``model`` (in eval mode) to an ONNX file with a dynamic batch axis.

    The graph has one input ``"input"`` of shape ``(batch, C, H, W)`` float32 and one output ``"logits"``.
    Uses the TorchScript exporter (fast), and falls back to the dynamo exporter if that one fails.

    Args:
        model: the model; its training mode is restored afterwards.
        path: the ``.onnx`` file to write (parent folders are created).
        input_shape: ``(C, H, W)`` of one input.
        batch_size: batch size of the example input used for tracing (the batch axis stays dynamic).
        opset: ONNX opset version.

    Returns:
        ``str(path)``.

    Raises:
        BuildError: neither exporter can export the model; the message names the architecture and the
            failing operator when the exporter reports it.
        OptionalDependencyError: onnx is not installed.
    """
    require("onnx", "nn")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    x = torch.randn(batch_size, *tuple(input_shape))
    errors: list[str] = []
    with _eval(model), _quiet(), torch.no_grad():
        try:
            torch.onnx.export(
                model, (x,), path, dynamo=False, opset_version=opset, input_names=["input"],
                output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            )
            return path
        except Exception as e:  # the legacy exporter cannot handle something: try dynamo
            errors.append(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        try:
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                model, (x,), path, dynamo=True, opset_version=opset, input_names=["input"],
                output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False,
            )
            return path
        except Exception as e:
            msg = str(e).strip()
            errors.append(f"{type(e).__name__}: {msg.splitlines()[0] if msg else ''}")
    raise BuildError(f"cannot export {_describe(model)} to ONNX opset {opset}: {' | '.join(errors)}")


def onnx_parity(model: nn.Module, path: str | os.PathLike, x: np.ndarray | torch.Tensor) -> float:
    """Largest absolute difference between the model's outputs (eval mode, no grad) and onnxruntime's
    outputs of the ONNX file ``path`` on the batch ``x`` (``(B, C, H, W)``, cast to float32).

    Raises:
        OptionalDependencyError: onnxruntime is not installed.
    """
    ort = require("onnxruntime", "nn")
    xn = np.ascontiguousarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    with _eval(model), torch.no_grad():
        ref = model(torch.from_numpy(xn.copy())).detach().cpu().numpy()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1       # a correctness check: one thread, no contention with other work
    sess = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: xn})[0]
    if out.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
