"""The embedded default job: ``archscout demo --out DIR`` (needs ``archscout[nn,plot]``)."""

from .run import DemoSettings, run_demo
from .space import DEMO_OPS, demo_builder, demo_space

__all__ = ["DEMO_OPS", "DemoSettings", "demo_builder", "demo_space", "run_demo"]
