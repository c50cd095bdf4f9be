"""Compile architectures into plain PyTorch models, export them to ONNX (needs ``archscout[nn]``).

``archscout.nn`` imports torch; ``import archscout`` does not import this package.

- :func:`build_model` / :class:`ModelFactory`: an architecture to a ``torch.nn.Module``, seeded weights;
- :func:`register_builder` / :func:`list_builders`: builders per space name (``nb201``, ``mbv3``);
- :func:`create_op` / :func:`list_ops`: the op library (``conv3x3``, ``nor_conv_3x3``, ``dwsep5x5``,
  ``mbconv_k3_e4_se``, ``maxpool3x3``, ``avg_pool_3x3``, ``skip_connect``, ``none``, ``attn2``, ...);
- :func:`export_onnx` / :func:`onnx_parity`: ONNX files and their agreement with PyTorch.
"""

from ..errors import require

require("torch", "nn")

from .builders import ModelFactory, build_model, list_builders, register_builder  # noqa: E402
from .export import export_onnx, load_weights, onnx_parity  # noqa: E402
from .ops import create_op, list_ops  # noqa: E402

__all__ = [
    "ModelFactory",
    "build_model",
    "create_op",
    "export_onnx",
    "list_builders",
    "list_ops",
    "load_weights",
    "onnx_parity",
    "register_builder",
]
