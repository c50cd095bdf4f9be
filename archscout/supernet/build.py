"""Building a supernet from a space, and reading a trained one back from its folder.

Supported space shapes (anything else gets a :class:`~archscout.errors.ConfigError` that lists them):

* **cell spaces**: exactly one :class:`~archscout.space.Cell` parameter whose ops are library ops
  (:func:`archscout.nn.ops.list_ops`), e.g. ``nb201``; the macro network is NB201's (options ``C``, ``N``).
* **stage spaces**: a :class:`~archscout.space.Stages` parameter named ``stages`` whose layers have
  ``kernel`` (odd) and ``expand`` (>= 1), plus optionally a ``width_mult`` parameter, e.g. ``mbv3``; the
  macro network is the ``mbv3`` builder's (options ``widths``, ``stem_width``, ``use_se``, ``head_width``,
  ``strides``), made elastic in depth, kernel size, expand ratio and width as in Once-for-All.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..space import Space
from .base import Supernet

__all__ = ["SUPPORTED", "create_supernet", "load_supernet", "supernet_kind"]

SUPPORTED = ("one Cell parameter of library ops (like 'nb201'), or a Stages parameter named 'stages' with layers "
             "'kernel' and 'expand' and an optional 'width_mult' (like 'mbv3')")


def supernet_kind(space: Space) -> str:
    """``"cell"`` or ``"stages"``: which supernet family fits ``space``.

    Raises:
        ConfigError: the space has neither shape (the message lists the supported shapes).
    """
    params = space.params
    kinds = {n: getattr(p, "kind", None) for n, p in params.items()}
    if len(params) == 1 and next(iter(kinds.values())) == "cell":
        return "cell"
    if kinds.get("stages") == "stages" and set(params) <= {"stages", "width_mult"}:
        layer = set(getattr(params["stages"], "layer", {}))
        if layer == {"kernel", "expand"}:
            return "stages"
    raise ConfigError(f"no supernet fits space {space.name!r} with parameters {kinds}; supported: {SUPPORTED}")


def create_supernet(space: Space, input_shape: Sequence[int], num_classes: int, **options: Any) -> Supernet:
    """The supernet of ``space`` for inputs ``(C, H, W)`` and ``num_classes`` logits.

    Raises:
        ConfigError: an unsupported space or an unknown option.
        BuildError: options or inputs the macro network cannot take.
    """
    kind = supernet_kind(space)
    if kind == "cell":
        from .cell import CellSupernet
        cls: Any = CellSupernet
    else:
        from .stages import StageSupernet
        cls = StageSupernet
    try:
        return cls(space, input_shape, num_classes, **options)
    except TypeError as e:
        raise ConfigError(f"bad option for the {kind} supernet: {e}") from None


def load_supernet(folder: str | os.PathLike, *, checkpoint: bool = False) -> tuple[Supernet, dict[str, Any]]:
    """The trained supernet of a folder written by :func:`~archscout.supernet.train_supernet` (on the CPU, in
    eval mode) and its ``supernet.json``.

    Args:
        checkpoint: read the last epoch's ``checkpoint.pt`` when training has not finished.

    Raises:
        SupernetError: the folder is missing, unfinished (without ``checkpoint``), corrupt or foreign.
    """
    from .train import SupernetError, load_state, load_weights_into, read_meta

    meta = read_meta(folder)
    if meta["settings"]["method"] == "few-shot":  # its parent stands for it (the evaluator reads the parts)
        if not meta.get("finished") and not checkpoint:
            raise SupernetError(f"the few-shot supernet in {os.fspath(folder)!r} has not finished training "
                                f"({meta.get('epochs_done', 0)}/{meta['settings']['epochs']} epochs); run the same "
                                "'archscout supernet train' command again to resume it")
        net, _ = load_supernet(Path(folder) / "parent", checkpoint=checkpoint)
        return net, meta
    sp = Space.from_config(meta["space"])
    cfg = meta["supernet"]
    net = create_supernet(sp, cfg["input_shape"], cfg["num_classes"], **cfg["options"])
    final = Path(folder) / "supernet.pt"
    if final.exists():
        state = load_state(final, "supernet state dict")
        load_weights_into(net, state, final)
    else:
        ckpt = Path(folder) / "checkpoint.pt"
        if not checkpoint or not ckpt.exists():
            raise SupernetError(f"the supernet in {os.fspath(folder)!r} has not finished training "
                                f"({meta.get('epochs_done', 0)}/{meta['settings']['epochs']} epochs); run the same "
                                "'archscout supernet train' command again to resume it")
        state = load_state(ckpt, "supernet checkpoint")
        load_weights_into(net, state.get("model", state), ckpt)
    net.eval()
    return net, meta
