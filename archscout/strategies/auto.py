"""``auto``: the default strategy, chosen from the study's objectives and fidelities.

* several objectives: :class:`~archscout.strategies.mobo.MultiObjectiveSMBO` (``mobo``), which uses cheap
  costs exactly when the study attaches them;
* one objective and an evaluator with several fidelities: ASHA (``asha``) with model-based sampling;
* one objective: SMBO with the Gaussian-process surrogate (``smbo``).

Constraints are honoured by every choice. The choice is made when the study attaches its context (before
the first ``ask``), or at the first ``ask`` of a strategy used on its own, and is kept in the state.
Everything, pending candidates included (those noted as evaluated elsewhere too), is delegated to the
chosen strategy, which fantasises their outcomes while it chooses the next candidate.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ConfigError
from ..results import Candidate, Proposal, Result
from .base import Capabilities, Strategy

__all__ = ["STRATEGY_CLASSES", "Auto"]


class Auto(Strategy):
    """The default: ``mobo`` for several objectives, model-based ``asha`` with fidelities, else ``smbo``.

    Args:
        settings: optional parameters for the strategy ``auto`` picks, per choice, e.g.
            ``{"smbo": {"beta": 1.0}, "mobo": {"pool_size": 200}}``; the defaults need none.

    Raises:
        ConfigError: ``settings`` names another strategy or a parameter that strategy does not take.
    """

    name = "auto"
    capabilities = Capabilities(multi_objective=True, fidelities=True)
    CHOICES = ("mobo", "asha", "smbo")

    def __init__(self, space, objectives=None, constraints=(), seed=None, dedup=True,
                 settings: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(space, objectives, constraints, seed, dedup)
        self.settings = _check_settings(settings)
        self._inner: Strategy | None = None
        self._choice: dict[str, Any] | None = None

    def choose(self) -> dict[str, Any]:
        """The strategy config ``auto`` runs given what is known now."""
        if len(self.objectives) > 1:
            name = "mobo"
        elif self.fidelities is not None and len(self.fidelities) > 1:
            name = "asha"
        else:
            name = "smbo"
        return {"name": name, **self.settings.get(name, {})}

    def _params(self) -> dict[str, Any]:
        return {"settings": {k: dict(v) for k, v in self.settings.items()}} if self.settings else {}

    def _build(self, choice: dict[str, Any]) -> Strategy:
        from . import create_strategy

        params = {k: v for k, v in choice.items() if k != "name"}
        inner = create_strategy(choice["name"], self.space, objectives=self.objectives,
                                constraints=self.constraints, seed=self.seed, dedup=self.dedup, **params)
        inner.attach(self.cost_models, self.fidelities)
        return inner

    @property
    def inner(self) -> Strategy:
        """The strategy ``auto`` delegates to (chosen on first use)."""
        if self._inner is None:
            self._choice = self.choose()
            self._inner = self._build(self._choice)
        return self._inner

    def attach(self, cost_models=None, fidelities=None) -> None:
        super().attach(cost_models, fidelities)
        if self._inner is not None and self._inner.n_told == 0 and not self._inner.pending:
            self._inner = None  # nothing happened yet: choose again with the new context
        elif self._inner is not None:
            self._inner.attach(cost_models, fidelities)

    # --- delegation ----------------------------------------------------------------------------------
    def _propose(self) -> Proposal:  # pragma: no cover - ask() hands every call to the chosen strategy
        raise AssertionError("auto delegates ask() to the strategy it chose")

    def check_ready(self) -> None:
        self.inner.check_ready()

    def ask(self) -> Candidate:
        return self.inner.ask()

    def tell(self, candidate: Candidate, result: Result) -> None:
        self.inner.tell(candidate, result)

    def note_pending(self, candidate: Candidate) -> None:
        self.inner.note_pending(candidate)

    def on_fail(self, candidate: Candidate) -> None:
        self.inner.on_fail(candidate)

    @property
    def pending(self) -> list[Candidate]:
        return self.inner.pending

    @property
    def n_told(self) -> int:
        """Results told so far (to the chosen strategy)."""
        return self.inner.n_told

    def is_seen(self, arch, fidelity=None) -> bool:
        return self.inner.is_seen(arch, fidelity)

    def state_dict(self) -> dict[str, Any]:
        inner = self.inner
        return {"name": self.name, "choice": self._choice, "inner": inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(f"state of strategy {state.get('name')!r} cannot be loaded into {self.name!r}")
        self._choice = dict(state["choice"])
        self._inner = self._build(self._choice)
        self._inner.load_state_dict(state["inner"])


def _check_settings(settings: Any) -> dict[str, dict[str, Any]]:
    if settings is None:
        return {}
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        raise ConfigError(f"settings must map a strategy name to its parameters, e.g. {{'smbo': {{'beta': 1.0}}}}, "
                          f"got {settings!r}")
    from . import STRATEGIES

    for name, params in settings.items():
        if name not in Auto.CHOICES:
            raise ConfigError(f"auto chooses among {list(Auto.CHOICES)}; settings name {name!r}")
        accepted = inspect.signature(STRATEGIES.get(name).__init__).parameters
        unknown = sorted(set(params) - set(accepted) | ({"space", "objectives", "constraints", "seed", "dedup"}
                                                         & set(params)))
        if unknown:
            raise ConfigError(f"settings for {name!r}: unknown or reserved parameters {unknown}")
    return {k: dict(v) for k, v in settings.items()}


STRATEGY_CLASSES = [Auto]
