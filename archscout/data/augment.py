"""Training-time augmentation of image batches: the standard CIFAR recipe (zero-pad, random crop back to size,
random horizontal flip), vectorised over the batch and driven by a ``torch.Generator`` so that it is
reproducible.

torch is imported when :func:`random_crop_flip` runs, never when this module is imported (so ``import
archscout.data`` stays free of torch); :class:`Augment`'s configs need no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError, require

if TYPE_CHECKING:
    import torch

__all__ = ["Augment", "random_crop_flip"]


def _check_padding(padding: Any) -> int:
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"padding must be an integer >= 0 (pixels), got {padding!r}")
    return padding


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     flip: bool = True) -> torch.Tensor:
    """Randomly shift and mirror each image of a batch: zero-pad by ``padding`` pixels on every side, crop a
    random ``H x W`` window back out, and flip it left-right with probability 0.5.

    The offsets (``0 .. 2 * padding`` rows, then columns, one per image) and the flips are drawn from
    ``generator``, in that order, on the generator's device; the crop is done by two gathers, with no loop
    over images. The same input and generator state always give the same output.

    Args:
        x: float images ``(B, C, H, W)`` (any device).
        generator: the source of randomness (advanced by the call).
        padding: pixels of zeros added on each side before cropping; 0 only flips.
        flip: draw random horizontal flips.

    Returns:
        A new tensor of the same shape, dtype and device.

    Raises:
        ConfigError: ``x`` is not a floating-point ``(B, C, H, W)`` tensor, or ``padding`` is not an integer
            >= 0.
        OptionalDependencyError: torch is not installed.
    """
    torch = require("torch", "nn")
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        what = f"a {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"random_crop_flip needs float images (B, C, H, W), got {what}")
    padding = _check_padding(padding)
    B, C, H, W = x.shape
    if B == 0 or (padding == 0 and not flip):
        return x.clone()
    gdev, dev = generator.device, x.device
    if padding:
        dy = torch.randint(0, 2 * padding + 1, (B,), generator=generator, device=gdev).to(dev)
        dx = torch.randint(0, 2 * padding + 1, (B,), generator=generator, device=gdev).to(dev)
    else:
        dy = dx = torch.zeros(B, dtype=torch.long, device=dev)
    cols = dx[:, None] + torch.arange(W, device=dev)  # (B, W): source column of each output column
    if flip:
        flipped = (torch.rand(B, generator=generator, device=gdev) < 0.5).to(dev)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    if padding:
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
        rows = dy[:, None] + torch.arange(H, device=dev)  # (B, H)
        padded = padded.gather(2, rows[:, None, :, None].expand(B, C, H, W + 2 * padding))
    else:
        padded = x
    return padded.gather(3, cols[:, None, None, :].expand(B, C, H, W))


@dataclass(frozen=True)
class Augment:
    """A training augmentation that can be saved in a config: :func:`random_crop_flip` with fixed settings.

    Args:
        padding: pixels of zero padding before the random crop (0: no shifts).
        flip: random horizontal flips.

    Raises:
        ConfigError: ``padding`` is not an integer >= 0 or ``flip`` is not a bool.
    """

    padding: int = 4
    flip: bool = True
    KIND: ClassVar[str] = "crop-flip"

    def __post_init__(self) -> None:
        _check_padding(self.padding)
        if not isinstance(self.flip, bool):
            raise ConfigError(f"flip must be true or false, got {self.flip!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch ``(B, C, H, W)``; see :func:`random_crop_flip`."""
        return random_crop_flip(x, generator, self.padding, self.flip)

    def to_config(self) -> dict[str, Any]:
        """``{"kind": "crop-flip", "padding": 4, "flip": True}`` (JSON-ready)."""
        return {"kind": self.KIND, "padding": self.padding, "flip": self.flip}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | None) -> Augment | None:
        """The augmentation a config describes: None (no augmentation), ``"crop-flip"`` (default settings),
        or a mapping as written by :meth:`to_config` (``padding`` and ``flip`` optional).

        Raises:
            ConfigError: another kind, unknown keys, or bad values.
        """
        if config is None:
            return None
        if isinstance(config, str):
            config = {"kind": config}
        if not isinstance(config, Mapping):
            raise ConfigError(f"an augmentation config must be None, 'crop-flip' or a mapping, got "
                              f"{type(config).__name__}")
        if config.get("kind") != cls.KIND:
            raise ConfigError(f"unknown augmentation kind {config.get('kind')!r}; the only one is {cls.KIND!r} "
                              "(or None for no augmentation)")
        extra = sorted(set(config) - {"kind", "padding", "flip"})
        if extra:
            raise ConfigError(f"unknown key(s) {', '.join(map(repr, extra))} in the augmentation config; "
                              "'crop-flip' takes padding and flip")
        return cls(padding=config.get("padding", 4), flip=config.get("flip", True))
