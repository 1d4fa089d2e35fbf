"""The runs of a compare: the (env, algo, seed) plan, where each run's files live, which have finished.

A compare writes one folder per run under ``<results>/runs/<env>__<algo>__seed<k>/``: ``eval.csv``
(the learning curve), ``log.txt`` (what the run printed), ``model.zip``, ``tb/`` (TensorBoard) and
``done.json``, the run's summary, written last. Tune's experiments (its state, each trial's
checkpoints and errors) live beside them in ``<results>/tune/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rl_diffcat.benchmark.algos import action_space_of, check_action_space, load_hyperparams, parse_algo
from rl_diffcat.benchmark.runner import default_eval_freq, jsonable


@dataclass(frozen=True)
class RunSpec:
    """One (env, algo, seed) run of a compare, fully resolved (no defaults left to the trial).

    :param env_id: gymnasium env id.
    :param algo: algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param seed: the seed.
    :param steps: env steps.
    :param eval_freq: env steps between evaluations.
    :param n_eval_episodes: episodes per evaluation.
    :param overrides: hyperparameter overrides.
    """

    env_id: str
    algo: str
    seed: int
    steps: int
    eval_freq: int
    n_eval_episodes: int
    overrides: Dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def name(self) -> str:
        """Folder name of the run (file-system safe), also its Tune trial's name."""
        return f"{self.env_id.replace('/', '-')}__{self.algo.replace(':', '-')}__seed{self.seed}"

    @property
    def label(self) -> str:
        """``env algo seed k``, as the compare's log lines name the run."""
        return f"{self.env_id} {self.algo} seed {self.seed}"

    def config(self) -> Dict[str, Any]:
        """What must match for a finished run to be reused, and what a trial is given."""
        return {
            "env": self.env_id,
            "algo": self.algo,
            "seed": self.seed,
            "steps": self.steps,
            "eval_freq": self.eval_freq,
            "n_eval_episodes": self.n_eval_episodes,
            "overrides": jsonable(self.overrides),
        }

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "RunSpec":
        """The inverse of :meth:`config`."""
        return cls(
            config["env"], config["algo"], int(config["seed"]), int(config["steps"]), int(config["eval_freq"]),
            int(config["n_eval_episodes"]), dict(config.get("overrides") or {}),
        )  # fmt: skip


def plan_runs(
    envs: Sequence[str],
    algos: Sequence[str],
    seeds: Sequence[int],
    steps: Optional[int] = None,
    eval_freq: Optional[int] = None,
    n_eval_episodes: int = 10,
    overrides: Optional[Dict[str, Any]] = None,
    log: Callable[[str], None] = print,
) -> List[RunSpec]:
    """Check every env and algo up front (a typo fails before anything trains) and list the runs.

    An (env, algo) pair whose action space the algo does not support (or without the action masks
    it needs) is left out (``log`` says why), so one compare can put ``sac`` on ``Pendulum-v1``
    beside ``diffcat-sac`` on its discretized twin; an algo that fits none of the envs is an error.

    :param envs: env ids.
    :param algos: algo labels.
    :param seeds: seeds.
    :param steps: env steps per run; None uses each (algo, env)'s ``n_timesteps``.
    :param eval_freq: env steps between evaluations; None evaluates about 20 times per run.
    :param n_eval_episodes: episodes per evaluation.
    :param overrides: hyperparameter overrides applied to every run.
    :param log: receives one line per (env, algo) pair left out.
    :return: the runs, env-major then algo then seed.
    """
    if not envs or not algos or not seeds:
        raise ValueError("compare needs at least one env, one algo and one seed")
    for algo in algos:
        parse_algo(algo)
    action_spaces = {env_id: action_space_of(env_id) for env_id in envs}
    misfits: Dict[Tuple[str, str], ValueError] = {}  # why an algo cannot run on an env
    for algo in algos:
        errors = {}
        for env_id, action_space in action_spaces.items():
            try:
                check_action_space(parse_algo(algo)[0], env_id, action_space)
            except ValueError as error:
                errors[env_id] = misfits[env_id, algo] = error
        if len(errors) == len(action_spaces):
            raise errors[envs[0]]
    specs = []
    for env_id in envs:
        for algo in algos:
            if (env_id, algo) in misfits:
                log(f"leaving out {algo} on {env_id}: {misfits[env_id, algo]}")
                continue
            run_steps = int(steps if steps is not None else load_hyperparams(algo, env_id, overrides=overrides)["n_timesteps"])
            for seed in seeds:
                specs.append(
                    RunSpec(
                        env_id, algo, int(seed), run_steps, int(eval_freq or default_eval_freq(run_steps)), int(n_eval_episodes),
                        dict(overrides or {}),
                    )  # fmt: skip
                )
    return specs


def resolved_params(spec: RunSpec) -> Dict[str, Any]:
    """The hyperparameters ``spec``'s run trains with, as its ``done.json`` and checkpoints record them."""
    params = load_hyperparams(spec.algo, spec.env_id, overrides=spec.overrides)
    params["n_timesteps"] = spec.steps
    return params


def run_dir(results_dir: str, spec: RunSpec) -> str:
    """:return: the folder of ``spec``'s files."""
    return os.path.join(results_dir, "runs", spec.name)


def read_done(results_dir: str, spec: RunSpec) -> Optional[Dict[str, Any]]:
    """A finished run is reused only if it ran the same configuration *and* the same resolved
    hyperparameters, so editing a ``hyperparams/*.yml`` file retrains the runs it affects.

    :return: the summary of ``spec`` if it finished that way, else None (also for a ``done.json``
        that cannot be read: that run trains again).
    """
    import json

    path = os.path.join(run_dir(results_dir, spec), "done.json")
    try:
        with open(path) as file:
            done = json.load(file)
        config = spec.config()
        stored = {key: done.get(key, {} if key == "overrides" else None) for key in config}
    except (OSError, ValueError, AttributeError):
        return None
    return done if stored == config and done.get("hyperparams") == jsonable(resolved_params(spec)) else None
