"""One run of a compare as a Ray Tune function trainable.

The trial builds and trains its model through :func:`~rl_diffcat.benchmark.runner.train_run`, as
``rl-diffcat train`` does, so a seeded run trains the same as before. It reports every evaluation
to Tune and hands Tune a checkpoint (model, replay buffer, ``VecNormalize`` statistics, the curve
so far: :func:`~rl_diffcat.benchmark.checkpoint.write_checkpoint`) about ten times per run.

A trial goes on from the newest readable checkpoint of its run: the one Tune gives back when it
retries the trial after its worker died (``FailureConfig``), else the newest one an earlier
compare on the same results folder left (the driver was killed; the same command is run again).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from typing import Any, Dict, List

from rl_diffcat.compare.grid import RunSpec, resolved_params, run_dir

TUNE_FOLDER = "tune"  # under the results folder: one Tune experiment per compare that trained something


def checkpoint_folders(results_dir: str, spec: RunSpec) -> List[str]:
    """The Tune checkpoints of ``spec``'s run in every experiment under ``<results>/tune``, newest first."""
    def order(path: str) -> tuple:
        experiment = os.path.basename(os.path.dirname(os.path.dirname(path)))
        index = re.search(r"(\d+)$", path)
        return experiment, int(index.group(1)) if index else -1

    paths = glob.glob(os.path.join(results_dir, TUNE_FOLDER, "*", spec.name, "checkpoint_*"))
    return sorted((path for path in paths if os.path.isdir(path)), key=order, reverse=True)


def train_trial(config: Dict[str, Any]) -> None:
    """The Tune trainable: train the run ``config["run"]`` (:meth:`RunSpec.config`) into its folder.

    :param config: ``run`` (the run's configuration), ``results`` (the results folder, absolute),
        ``device``, ``threads`` (torch threads) and ``checkpoint_freq`` (env steps between
        checkpoints; None: about ten per run).
    """
    import ray
    import torch
    from ray import tune

    from rl_diffcat.benchmark import checkpoint
    from rl_diffcat.benchmark.runner import default_checkpoint_freq, train_run

    spec = RunSpec.from_config(config["run"])
    results = config["results"]
    folder = run_dir(results, spec)
    os.makedirs(folder, exist_ok=True)
    torch.set_num_threads(int(config["threads"]))
    retried = tune.get_checkpoint()
    folders = [retried.path] if retried is not None else []
    folders += [path for path in checkpoint_folders(results, spec) if retried is None or os.path.realpath(path) != os.path.realpath(retried.path)]
    checkpoint_freq = config.get("checkpoint_freq")
    if checkpoint_freq is None:
        checkpoint_freq = default_checkpoint_freq(spec.steps, spec.eval_freq)
    warmup = int(resolved_params(spec).get("learning_starts", 0) or 0)  # off-policy agents' random steps

    def note(line: str) -> None:
        print(line, flush=True)
        tune.report({"note": line})

    def report_evaluation(row: Dict[str, Any]) -> None:
        tune.report({key: row[key] for key in ("step", "mean_return", "wall_clock")} | {"total_steps": spec.steps, "warmup": warmup})

    def save(model: Any, state: Dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix=".checkpoint-", dir=folder) as staging:  # Tune copies it into its storage
            checkpoint.write_checkpoint(staging, model, state)
            tune.report({"checkpoint_step": int(model.num_timesteps)}, checkpoint=tune.Checkpoint.from_directory(staging))

    with open(os.path.join(folder, "log.txt"), "a") as log_file, redirect_stdout(log_file), redirect_stderr(log_file):
        node = ray.get_runtime_context().get_node_id()
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}: trial of {spec.label} in process {os.getpid()} on {socket.gethostname()} (Ray node {node})", flush=True)
        try:
            summary = train_run(
                spec.env_id, spec.algo, seed=spec.seed, steps=spec.steps, overrides=spec.overrides, device=config["device"],
                eval_freq=spec.eval_freq, n_eval_episodes=spec.n_eval_episodes, eval_csv=os.path.join(folder, "eval.csv"),
                save_path=os.path.join(folder, "model.zip"), tensorboard_log=os.path.join(folder, "tb"),
                done_json=os.path.join(folder, "done.json"), checkpoint_freq=checkpoint_freq, log=note, resume_from=folders,
                save_checkpoint=save if checkpoint_freq else None, on_evaluation=report_evaluation,
            )  # fmt: skip
        except BaseException:
            traceback.print_exc()
            raise
    tune.report({"done": True, **{key: summary[key] for key in ("final_mean_return", "wall_clock_s", "env_steps_per_s")}})


def remove_checkpoints(results_dir: str, spec: RunSpec) -> None:
    """Delete the Tune checkpoints of a finished run (its replay buffers can be large)."""
    for path in checkpoint_folders(results_dir, spec):
        shutil.rmtree(path, ignore_errors=True)
