"""Optimizers and pruners: Optuna's samplers and pruners behind Guild's names.

Optuna is imported only by sweeps that need it (a plain grid does not).
"""

from __future__ import annotations

from typing import Any

from guild_jupyter.errors import GuildError
from guild_jupyter.sweeps.space import Dimension

OPTIMIZERS = ("grid", "random", "tpe", "gp", "cmaes", "qmc")
PRUNERS = ("median", "asha", "hyperband")
_NEEDS = {"gp": "torch and scipy", "cmaes": "cmaes", "qmc": "scipy"}


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise GuildError("this sweep needs Optuna: pip install 'guild-jupyter[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def check_names(optimizer: str, prune: str | None) -> None:
    if optimizer not in OPTIMIZERS:
        raise GuildError(f"unknown optimizer {optimizer!r} (one of {', '.join(OPTIMIZERS)})")
    if prune is not None and prune not in PRUNERS:
        raise GuildError(f"unknown pruner {prune!r} (one of {', '.join(PRUNERS)})")


def make_sampler(name: str, seed: int | None) -> Any:
    optuna = optuna_module()
    samplers = optuna.samplers
    try:
        if name in ("random", "grid"):  # grid trials are enqueued; the sampler is not asked
            return samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return samplers.TPESampler(seed=seed)
        if name == "gp":
            return samplers.GPSampler(seed=seed)
        if name == "cmaes":
            return samplers.CmaEsSampler(seed=seed)
        return samplers.QMCSampler(seed=seed)
    except ImportError:
        raise GuildError(f"optimizer {name!r} needs {_NEEDS.get(name, 'more packages')}: "
                         "install them or use tpe/random") from None


def make_pruner(name: str | None) -> Any:
    optuna = optuna_module()
    pruners = optuna.pruners
    if name is None:
        return pruners.NopPruner()
    if name == "median":
        return pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner()
    return pruners.HyperbandPruner()


def distribution(dim: Dimension, flag_type: str | None) -> Any:
    """The Optuna distribution of one dimension (lists are categorical)."""
    d = optuna_module().distributions
    if dim.discrete:
        return d.CategoricalDistribution(dim.values)
    if flag_type == "int":
        return d.IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return d.FloatDistribution(dim.low, dim.high, log=dim.log)
