"""Named compare configurations: the README's quick demo and the BENCHMARKS.md tables.

Algorithm hyperparameters stay in ``rl_diffcat/hyperparams/*.yml``; a preset only fixes the
experiment (envs, algos, seeds, budget, evaluation, results folder). Flags given on the command
line override the preset's values.
"""

from __future__ import annotations

from typing import Any, Dict

BASE_ALGOS = ["diffcat-sac", "discrete-sac", "ppo", "ppo-diffcat"]
REPORT_ALGOS = ["diffcat-sac", "diffcat-sac:gumbel_softmax", "discrete-sac", "ppo", "ppo-diffcat"]

PRESETS: Dict[str, Dict[str, Any]] = {
    # A few minutes on a laptop CPU: every algo, 2 seeds, a small budget on CartPole (the SAC
    # agents do one gradient step per env step, so they set the pace).
    "quick": {
        "envs": ["CartPole-v1"],
        "algos": BASE_ALGOS,
        "seeds": 2,
        "steps": 5_000,
        "eval_freq": 500,
        "eval_episodes": 5,
        "results": "results/quick",
    },
    # BENCHMARKS.md tables: 5 seeds at the budgets of the targets.
    "cartpole": {
        "envs": ["CartPole-v1"],
        "algos": REPORT_ALGOS,
        "seeds": 5,
        "steps": 50_000,
        "eval_freq": 2_500,
        "eval_episodes": 10,
        "results": "results/cartpole",
    },
    "acrobot": {
        "envs": ["Acrobot-v1"],
        "algos": REPORT_ALGOS,
        "seeds": 5,
        "steps": 100_000,
        "eval_freq": 5_000,
        "eval_episodes": 10,
        "results": "results/acrobot",
    },
    "lunarlander": {
        "envs": ["LunarLander-v3"],
        "algos": REPORT_ALGOS,
        "seeds": 5,
        "steps": 300_000,
        "eval_freq": 10_000,
        "eval_episodes": 10,
        "results": "results/lunarlander",
    },
    # Combinatorial actions: DiffCatSAC on the discretized task (11 bins per action dimension)
    # beside SB3's SAC on the continuous original (compare leaves out the pairs that do not fit).
    "pendulum": {
        "envs": ["Pendulum-v1", "rl_diffcat/Pendulum-Discrete-v0"],
        "algos": ["sac", "diffcat-sac"],
        "seeds": 5,
        "steps": 20_000,
        "eval_freq": 1_000,
        "eval_episodes": 10,
        "results": "results/pendulum",
        "overlay": True,  # one figure: SAC on the continuous task, DiffCatSAC on its bins
    },
    "halfcheetah": {
        "envs": ["HalfCheetah-v5", "rl_diffcat/HalfCheetah-Discrete-v0"],
        "algos": ["sac", "diffcat-sac"],
        "seeds": 5,
        "steps": 300_000,
        "eval_freq": 10_000,
        "eval_episodes": 10,
        "results": "results/halfcheetah",
        "overlay": True,
    },
    # Action masks on a combinatorial task: 16 binary decisions, a quarter fixed per episode.
    # The SAC agents and MaskablePPO read the masks; PPO does not and pays -1 for a broken decision.
    "masked": {
        "envs": ["rl_diffcat/PolyProg-Masked-D16-v0"],
        "algos": ["diffcat-sac", "diffcat-sac:gumbel_softmax", "maskable-ppo", "ppo"],
        "seeds": 3,
        "steps": 10_000,
        "eval_freq": 500,
        "eval_episodes": 50,
        "results": "results/masked",
    },
    # MinAtar on the GPU machine (CNN agents; 1M steps is hours per run even there).
    "minatar": {
        "envs": ["rl_diffcat/MinAtar-Breakout-v0", "rl_diffcat/MinAtar-SpaceInvaders-v0"],
        "algos": REPORT_ALGOS,
        "seeds": 5,
        "steps": 1_000_000,
        "eval_freq": 50_000,
        "eval_episodes": 10,
        "results": "results/minatar",
    },
}

# Used when neither a preset nor a flag sets a value.
COMPARE_DEFAULTS: Dict[str, Any] = {
    "envs": ["CartPole-v1"],
    "algos": ["ppo"],
    "seeds": 3,
    "steps": None,
    "eval_freq": None,
    "eval_episodes": 10,
    "results": "results/compare",
    "overlay": False,
}
