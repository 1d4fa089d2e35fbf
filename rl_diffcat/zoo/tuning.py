"""Optuna search spaces for rl-zoo3's ``-optimize`` with our agents.

rl-zoo3 looks an algorithm's search space up by name (``HYPERPARAMS_SAMPLER``) and turns a stored
trial back into hyperparameters with its converter (``HYPERPARAMS_CONVERTER``, used by
``--trial-id``/``--storage``), so each of ours registers both. A sampler returns exactly what its
converter makes of the trial's raw parameters.

- ``discrete_sac``: rl-zoo3's SAC space (gamma, learning rate, batch size, train frequency, tau,
  net size), plus the two knobs that decide our SAC agents' stability: ``target_entropy_scale``
  and ``twin_q``.
- ``diffcat_sac``: the same, plus the ReDGE sampler's ``n_steps`` and ``t_1`` (the sampler is set
  to ``redge``). ``t_1`` starts at 0.1: with few steps and a smaller one the gradient comes from
  samples far from ``pi`` (README, "Choosing n_steps and t_1").
- ``ppo_diffcat``: rl-zoo3's PPO space. PPO's loss uses ``log_prob``, not the sampler, so the
  sampler's knobs change nothing there and are not searched.

As with rl-zoo3's own spaces, the sampled ``policy_kwargs`` (net size) replace the env entry's and
``-params``' (rl-zoo3 applies the sample last), a features extractor included: vector observations.
"""

from __future__ import annotations

from typing import Any, Dict

# Our raw trial parameter names for the ReDGE knobs -> the sampler's keyword arguments.
REDGE_KNOBS = {"redge_n_steps": "n_steps", "redge_t_1": "t_1"}


def _redge_kwargs(raw: Dict[str, Any]) -> Dict[str, Any]:
    return {"sampler": "redge", "sampler_kwargs": {name: raw[key] for key, name in REDGE_KNOBS.items()}}


def convert_discrete_sac_params(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A trial's raw parameters -> DiscreteSAC keyword arguments (``target_entropy_scale`` and
    ``twin_q`` are keyword arguments already, and rl-zoo3's converter passes them through)."""
    from rl_zoo3.hyperparams_opt import convert_offpolicy_params

    return convert_offpolicy_params(dict(raw))


def convert_diffcat_sac_params(raw: Dict[str, Any]) -> Dict[str, Any]:
    """A trial's raw parameters -> DiffCatSAC keyword arguments."""
    rest = {key: value for key, value in raw.items() if key not in REDGE_KNOBS}
    return {**convert_discrete_sac_params(rest), **_redge_kwargs(raw)}


def sample_discrete_sac_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> Dict[str, Any]:
    from rl_zoo3.hyperparams_opt import sample_sac_params

    params = sample_sac_params(trial, n_actions, n_envs, additional_args)
    params["target_entropy_scale"] = trial.suggest_float("target_entropy_scale", 0.1, 0.9)
    params["twin_q"] = trial.suggest_categorical("twin_q", ["min", "mean"])
    return params


def sample_diffcat_sac_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> Dict[str, Any]:
    params = sample_discrete_sac_params(trial, n_actions, n_envs, additional_args)
    raw = {
        "redge_n_steps": trial.suggest_categorical("redge_n_steps", [3, 5, 10]),
        "redge_t_1": trial.suggest_float("redge_t_1", 0.1, 0.9),
    }
    return {**params, **_redge_kwargs(raw)}


def register_search_spaces() -> None:
    """Add our algorithms to rl-zoo3's ``HYPERPARAMS_SAMPLER`` and ``HYPERPARAMS_CONVERTER`` (in
    place: rl-zoo3's experiment manager imported those very dicts)."""
    from rl_zoo3 import hyperparams_opt

    hyperparams_opt.HYPERPARAMS_SAMPLER.update(
        {
            "diffcat_sac": sample_diffcat_sac_params,
            "discrete_sac": sample_discrete_sac_params,
            "ppo_diffcat": hyperparams_opt.sample_ppo_params,
        }
    )
    hyperparams_opt.HYPERPARAMS_CONVERTER.update(
        {
            "diffcat_sac": convert_diffcat_sac_params,
            "discrete_sac": convert_discrete_sac_params,
            "ppo_diffcat": hyperparams_opt.convert_onpolicy_params,
        }
    )
