"""The embedded default job: ``archscout demo --out DIR`` (needs ``archscout[nn,plot]``): one supernet trained
on Fashion-MNIST, specialised for this CPU at several latency budgets, exported and checked, beside a search
that trains from scratch (see :mod:`archscout.demo.run`)."""

from .run import run_demo
from .settings import DemoSettings
from .space import DEMO_OPS, demo_builder, demo_space

__all__ = ["DEMO_OPS", "DemoSettings", "demo_builder", "demo_space", "run_demo"]
