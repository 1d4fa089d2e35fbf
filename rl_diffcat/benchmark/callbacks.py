"""Evaluation during training: an EvalCallback-like callback that writes a learning curve to CSV."""

from __future__ import annotations

import csv
import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

EVAL_COLUMNS = ("env", "algo", "seed", "step", "mean_return", "std_return", "wall_clock")


class EvalCurveCallback(BaseCallback):
    """Every ``eval_freq`` env steps, run ``n_eval_episodes`` deterministic episodes on a separate
    eval env and append a row ``(env, algo, seed, step, mean_return, std_return, wall_clock)``.

    Unlike SB3's ``EvalCallback`` it counts *env steps* (not callback calls, which differ by
    ``n_envs``), also evaluates at step 0 and at the end of training, and keeps the time spent
    evaluating apart so the env-steps/second of training is honest.

    :param eval_env: the env to evaluate on (not the training env); when the model trains on a
        ``VecNormalize`` env, one wrapped in ``VecNormalize`` too, whose observation statistics
        are copied from training before each evaluation (as SB3's ``EvalCallback`` syncs them).
    :param eval_freq: evaluate every this many env steps.
    :param n_eval_episodes: episodes per evaluation.
    :param csv_path: file the rows are appended to (created with a header), or None.
    :param run_info: ``{"env", "algo", "seed"}`` written in every row.
    :param verbose: 1 prints each evaluation.
    :param on_row: receives each new row (a compare reports it to Ray Tune).
    """

    def __init__(
        self,
        eval_env: Any,
        eval_freq: int,
        n_eval_episodes: int = 10,
        csv_path: Optional[str] = None,
        run_info: Optional[Dict[str, Any]] = None,
        verbose: int = 0,
        on_row: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> None:
        super().__init__(verbose)
        if eval_freq < 1 or n_eval_episodes < 1:
            raise ValueError(f"eval_freq and n_eval_episodes must be >= 1, got {eval_freq} and {n_eval_episodes}")
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.csv_path = csv_path
        self.run_info = dict(run_info or {})
        self.on_row = on_row
        self.rows: List[Dict[str, Any]] = []
        self.eval_time = 0.0
        self._next_eval = 0
        self._start: Optional[float] = None
        self._last_eval_step = -1
        self._restored: Optional[Dict[str, Any]] = None
        self._eval_normalizer: Any = None  # the eval env's VecNormalize, when the model trains on one

    def state_dict(self) -> Dict[str, Any]:
        """What a checkpoint needs to continue the curve: its rows, schedule and clocks."""
        return {
            "rows": [dict(row) for row in self.rows],
            "next_eval": self._next_eval,
            "last_eval_step": self._last_eval_step,
            "eval_time": self.eval_time,
            "wall_clock": self.wall_clock,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` when training (re)starts: the CSV is rewritten with
        the stored rows, the evaluation schedule goes on, and the clocks count the time already spent.
        """
        self._restored = dict(state)

    def _on_training_start(self) -> None:
        from stable_baselines3.common.vec_env import unwrap_vec_normalize

        trains_normalized = self.model.get_vec_normalize_env() is not None
        self._eval_normalizer = unwrap_vec_normalize(self.eval_env) if trains_normalized else None
        if trains_normalized and self._eval_normalizer is None:
            raise ValueError(
                "the model trains on a VecNormalize env, so the eval env must be wrapped in VecNormalize too "
                "(rl_diffcat.benchmark.normalization.make_eval_env); its statistics are copied from training before each evaluation"
            )
        self._start = time.perf_counter()
        self._next_eval = self.num_timesteps
        restored, self._restored = self._restored, None
        if restored is not None:
            self.rows = [dict(row) for row in restored["rows"]]
            self._next_eval = int(restored["next_eval"])
            self._last_eval_step = int(restored["last_eval_step"])
            self.eval_time = float(restored["eval_time"])
            self._start -= float(restored["wall_clock"])
        if self.csv_path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.csv_path)), exist_ok=True)
            with open(self.csv_path, "w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow(EVAL_COLUMNS)
                writer.writerows([row[key] for key in EVAL_COLUMNS] for row in self.rows)
        if self.num_timesteps >= self._next_eval and self._last_eval_step != self.num_timesteps:
            self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._evaluate()
        return True

    def _on_training_end(self) -> None:
        if self._last_eval_step != self.num_timesteps:
            self._evaluate()

    @property
    def wall_clock(self) -> float:
        """Seconds since training started (over every segment of a resumed run); 0 before it starts."""
        return 0.0 if self._start is None else time.perf_counter() - self._start

    @property
    def training_time(self) -> float:
        """Seconds since training started, minus the time spent evaluating."""
        return self.wall_clock - self.eval_time

    def _evaluate(self) -> None:
        from rl_diffcat.benchmark.evaluation import policy_evaluator
        from rl_diffcat.benchmark.normalization import copy_stats

        tic = time.perf_counter()
        if self._eval_normalizer is not None:
            copy_stats(self.model.get_vec_normalize_env(), self._eval_normalizer)
        returns, _ = policy_evaluator(self.model)(
            self.model, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True, return_episode_rewards=True
        )
        self.eval_time += time.perf_counter() - tic
        row = {
            **{key: self.run_info.get(key, "") for key in ("env", "algo", "seed")},
            "step": int(self.num_timesteps),
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "wall_clock": round(self.wall_clock, 3),
        }
        self.rows.append(row)
        self._last_eval_step = self.num_timesteps
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_freq
        self.logger.record("eval/mean_reward", row["mean_return"])
        if self.csv_path is not None:
            with open(self.csv_path, "a", newline="") as file:
                csv.writer(file).writerow([row[key] for key in EVAL_COLUMNS])
        if self.on_row is not None:
            self.on_row(dict(row))
        if self.verbose:
            print(f"step {row['step']}: return {row['mean_return']:.2f} +/- {row['std_return']:.2f}", flush=True)
