"""Search-space language (pure Python + numpy)."""

from .builtin import create_space, list_spaces
from .cell import Cell
from .params import Choice, Float, Int, Ordinal, Param
from .space import Architecture, Space
from .stages import Stages

__all__ = [
    "Architecture", "Cell", "Choice", "Float", "Int", "Ordinal", "Param", "Space", "Stages",
    "create_space", "list_spaces",
]
