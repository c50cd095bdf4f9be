"""Search-space language (pure Python + numpy)."""

from . import builtin as builtin  # registers the built-in spaces
from .cell import Cell
from .digit_cell import DigitCell
from .linkops import LinkOps
from .params import Choice, Float, Int, Ordinal, Param
from .registry import SPACES, create_space, list_spaces, register_space
from .skeleton import Skeleton
from .space import Architecture, Space
from .stages import Stages

__all__ = [
    "SPACES",
    "Architecture",
    "Cell",
    "Choice",
    "DigitCell",
    "Float",
    "Int",
    "LinkOps",
    "Ordinal",
    "Param",
    "Skeleton",
    "Space",
    "Stages",
    "create_space",
    "list_spaces",
    "register_space",
]
