"""The supernet contract: one ``nn.Module`` holding the weights of every architecture of a space.

A supernet runs one sub-network at a time: :meth:`Supernet.set_active` picks it and ``forward`` computes
exactly what that sub-network computes. :meth:`Supernet.extract` copies the active weights into a standalone
plain ``nn.Module`` (the network the ordinary builder makes for that architecture), so a sub-network
extracted from the supernet and the supernet with that sub-network active give the same outputs.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from ..space import Architecture, Space

__all__ = ["ELASTIC_DIMS", "Supernet"]

ELASTIC_DIMS = ("kernel", "depth", "expand", "width")
"""The elastic dimensions of stage supernets, in the order of OFA's progressive shrinking."""


class Supernet(nn.Module):
    """Base class of supernets.

    Attributes:
        space: the space whose architectures this supernet holds.
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: number of logits.
        kind: the supernet family (``"cell"`` or ``"stages"``), used in configs.
    """

    kind = ""

    def __init__(self, space: Space, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.space = space
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.active: Architecture | None = None

    # --- the active sub-network -----------------------------------------------------------------
    @abstractmethod
    def set_active(self, arch: Architecture) -> None:
        """Make ``arch`` (an architecture of :attr:`space`) the sub-network that ``forward`` computes.

        Raises:
            InvalidArchitectureError: ``arch`` is not an architecture of the space.
        """

    @abstractmethod
    def extract(self, arch: Architecture) -> nn.Module:
        """A standalone plain ``nn.Module`` for ``arch`` holding copies of the inherited weights (and
        batch-norm statistics); in eval mode it computes exactly what the supernet computes for ``arch``."""

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The keyword options that rebuild this supernet with :func:`create_supernet` (JSON values)."""

    # --- sampling for training methods ----------------------------------------------------------
    def elastic_dims(self) -> tuple[str, ...]:
        """The elastic dimensions of :data:`ELASTIC_DIMS` this supernet has, in shrinking order (stage
        supernets); ``()`` for supernets without progressive shrinking (cells)."""
        return ()

    def sample(self, rng: np.random.Generator, elastic: Sequence[str] | None = None) -> Architecture:
        """A random architecture; with ``elastic``, only those dimensions vary and the others stay at their
        largest value (OFA's progressive shrinking). The default ignores ``elastic``."""
        return self.space.sample(rng)

    def largest(self) -> Architecture | None:
        """The largest sub-network (the sandwich rule's teacher), or ``None`` if the space has no order."""
        return None

    def smallest(self) -> Architecture | None:
        """The smallest sub-network, or ``None`` if the space has no order."""
        return None

    def reorganize_channels(self) -> None:
        """Sort channels by importance so that smaller widths keep the most important ones (OFA); a
        function-preserving permutation. The default does nothing."""

    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "space": self.space.to_config(), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "options": self.options()}
