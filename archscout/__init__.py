"""archscout: hardware-aware neural architecture search.

``import archscout`` loads numpy and archscout's light modules only; torch, plotting and other heavy
dependencies load lazily where they are used.
"""

__version__ = "0.1.0"
