"""ONNX export, a PyTorch-vs-onnxruntime parity check, and loading saved weights safely."""

from __future__ import annotations

import contextlib
import io
import os
import pickle  # only for its exception type: nothing is unpickled here
import warnings
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import BuildError, DataError, require

__all__ = ["export_onnx", "load_weights", "onnx_parity"]


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
        except Exception as e:  # noqa: BLE001 - the legacy exporter cannot handle something: try dynamo
            errors.append(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        try:
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                model, (x,), path, dynamo=True, opset_version=opset, input_names=["input"],
                output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False,
            )
            return path
        except Exception as e:  # noqa: BLE001 - collected and reported in the BuildError below
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


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict saved with ``torch.save(model.state_dict(), path)`` (such as the demo's
    ``models/<name>.pt``) into ``model``, an instance of the same architecture (e.g. from ``build_model``).

    The file is read with ``torch.load(..., weights_only=True)``: only tensors and plain containers are
    unpickled, so a file that tries to run code or to build other objects is refused, never executed.

    Returns:
        ``model``, with the loaded weights (on the CPU).

    Raises:
        DataError: the file is missing, is not a weights file, holds something other than a state dict of
            tensors, or its tensors' names or shapes do not fit ``model``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"weights file {path!r} does not exist; pass a .pt file saved from model.state_dict()")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, which would run whatever the file asks for
        raise DataError(
            f"{path!r} is not a weights file: it is not a torch file or holds objects other than tensors, which "
            "are refused without being run; load only state dicts saved with torch.save(model.state_dict(), path)"
        ) from None
    except Exception as e:  # noqa: BLE001 - truncated, empty, not a zip/pickle at all, ...: re-raised as DataError
        first = str(e).strip().splitlines()[0] if str(e).strip() else "truncated or empty"
        raise DataError(
            f"{path!r} is not a weights file (a state dict saved with torch.save(model.state_dict(), path)): "
            f"{type(e).__name__}: {first}"
        ) from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DataError(f"{path!r} does not hold a state dict (a mapping of names to tensors), got "
                        f"{type(state).__name__}")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        def few(names: list[str]) -> str:
            return str(names[:3])[:-1] + (", ...]" if len(names) > 3 else "]")

        raise DataError(
            f"weights in {path!r} do not fit {_describe(model)}: missing {few(missing)}, unexpected "
            f"{few(unexpected)}; build the model of the architecture the weights were saved from"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise DataError(f"weights in {path!r} do not fit {_describe(model)}: {k!r} has shape {tuple(v.shape)}, "
                            f"the model's has {tuple(expected[k].shape)}")
    model.load_state_dict(state)
    return model
