"""Training one run in-process, and running a whole (env, algo, seed) grid in isolated subprocesses.

A compare writes one folder per run under ``<results>/runs/<env>__<algo>__seed<k>/``:
``eval.csv`` (the learning curve), ``log.txt`` (stdout and stderr of the process), ``model.zip``,
``tb/`` (TensorBoard), ``checkpoint/`` while it runs (:mod:`~rl_diffcat.benchmark.checkpoint`) and
``done.json``, the marker written last by a run that finished. A run whose ``done.json`` matches the
requested configuration is skipped when the compare is run again, so an interrupted compare
resumes; a run that crashed or was killed has no marker and goes on from its last checkpoint. A run
whose training process failed also gets ``failed.json`` (why), so ``--report-only`` reports it.
A run being trained by another compare on the same folder is locked (``compare.lock``,
:mod:`~rl_diffcat.benchmark.runlock`) and skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rl_diffcat.benchmark.algos import (
    action_space_of,
    algo_label,
    check_action_space,
    load_hyperparams,
    load_model,
    make_model,
    parse_algo,
)
from rl_diffcat.benchmark.callbacks import EvalCurveCallback
from rl_diffcat.benchmark.checkpoint import (
    RunCheckpointCallback,
    config_differences,
    load_replay_buffer,
    read_checkpoint,
    remove_checkpoint,
)
from rl_diffcat.benchmark.normalization import make_eval_env, normalize_kwargs, save_stats, stats_path
from rl_diffcat.benchmark.progress import format_return, wait_reporting_progress
from rl_diffcat.benchmark.runlock import RunLock, held_elsewhere, read_holder


def default_eval_freq(steps: int, n_points: int = 20) -> int:
    """Evaluate about ``n_points`` times per run."""
    return max(1, int(steps) // n_points)


def default_checkpoint_freq(steps: int, eval_freq: int, n_points: int = 10) -> int:
    """Checkpoint about ``n_points`` times per run, right after an evaluation (a multiple of ``eval_freq``)."""
    return max(1, round(int(steps) / n_points / eval_freq)) * int(eval_freq)


def run_config(env_id: str, algo: str, seed: int, steps: int, eval_freq: int, n_eval_episodes: int, params: Dict[str, Any]) -> Dict[str, Any]:
    """What must match for a checkpoint to be continued: the run and its resolved hyperparameters."""
    return {
        "env": env_id,
        "algo": algo,
        "seed": int(seed),
        "steps": int(steps),
        "eval_freq": int(eval_freq),
        "n_eval_episodes": int(n_eval_episodes),
        "hyperparams": _jsonable(params),
    }


def train_run(
    env_id: str,
    algo: str,
    seed: int = 0,
    steps: Optional[int] = None,
    sampler: Optional[str] = None,
    overrides: Optional[Dict[str, Any]] = None,
    device: str = "auto",
    eval_freq: Optional[int] = None,
    n_eval_episodes: int = 10,
    eval_csv: Optional[str] = None,
    save_path: Optional[str] = None,
    tensorboard_log: Optional[str] = None,
    done_json: Optional[str] = None,
    progress_bar: bool = False,
    verbose: int = 0,
    checkpoint_dir: Optional[str] = None,
    checkpoint_freq: Optional[int] = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Train ``algo`` on ``env_id`` with deterministic evaluations on a separate env.

    :param env_id: a gymnasium env id.
    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param seed: seed of the model, the training envs and (offset by 10_000) the eval env.
    :param steps: env steps to train for; None uses ``n_timesteps`` of the hyperparameter file.
    :param sampler: sampler override for the algos that have one.
    :param overrides: hyperparameter overrides, see :func:`load_hyperparams`.
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    :param eval_freq: evaluate every this many env steps; None evaluates about 20 times.
    :param n_eval_episodes: episodes per evaluation.
    :param eval_csv: where the learning curve is written, or None.
    :param save_path: where the model is saved (``.zip``), or None; a run with ``normalize`` also
        saves its ``VecNormalize`` statistics beside it (:func:`~rl_diffcat.benchmark.normalization.stats_path`).
    :param tensorboard_log: TensorBoard folder, or None.
    :param done_json: where the run summary is written last (the resume marker), or None.
    :param progress_bar: show SB3's tqdm/rich progress bar.
    :param verbose: SB3 verbosity; 1 also prints each evaluation.
    :param checkpoint_dir: folder of the mid-run checkpoint (:mod:`~rl_diffcat.benchmark.checkpoint`);
        it is deleted once the run has finished and its model is saved.
    :param checkpoint_freq: env steps between checkpoints; None or 0 writes none.
    :param resume: go on from the checkpoint in ``checkpoint_dir`` when there is one; a checkpoint of
        another configuration is an error.
    :param log: receives a line when the run resumes.
    :return: the run summary (also written to ``done_json``).
    """
    import gymnasium as gym
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.monitor import Monitor

    params = load_hyperparams(algo, env_id, sampler=sampler, overrides=overrides)
    steps = int(steps if steps is not None else params["n_timesteps"])
    params["n_timesteps"] = steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if checkpoint_freq is not None and checkpoint_freq < 0:
        raise ValueError(f"checkpoint_freq must be >= 0, got {checkpoint_freq}")
    if (checkpoint_freq or resume) and checkpoint_dir is None:
        raise ValueError("checkpoint_freq and resume need a checkpoint_dir")
    eval_freq = default_eval_freq(steps) if eval_freq is None else eval_freq
    label = algo_label(algo, sampler)
    normalize = normalize_kwargs(params)
    config = run_config(env_id, label, seed, steps, eval_freq, n_eval_episodes, params)
    state = read_checkpoint(checkpoint_dir) if resume and checkpoint_dir is not None else None
    if state is not None:
        differences = config_differences(state["config"], config)
        if differences:
            raise ValueError(
                f"the checkpoint in {checkpoint_dir} is of another run (it differs in {', '.join(differences)}); "
                "delete that folder, or run without --resume to start over"
            )
        if normalize is not None and state["vecnormalize"] is None:
            raise ValueError(f"the checkpoint in {checkpoint_dir} holds no VecNormalize statistics to go on with; delete that folder")
        # The RNG states are not saved: reseed from (seed, step) so a resumed run is reproducible.
        run_seed = seed + state["step"]
        model = load_model(label, env_id, params, state["model"], run_seed, device, tensorboard_log, verbose, state["vecnormalize"])
        if state["replay_buffer"] is not None:
            load_replay_buffer(model, state["replay_buffer"])
        log(f"resuming {label} on {env_id} (seed {seed}) from its checkpoint at step {state['step']} of {steps}")
    else:
        if checkpoint_freq:
            remove_checkpoint(checkpoint_dir)  # a checkpoint of an earlier run: this one starts over
        run_seed = seed
        model = make_model(label, env_id, params, seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=verbose)
    if normalize is None:
        eval_env = Monitor(gym.make(env_id))
        eval_env.reset(seed=run_seed + 10_000)
    else:  # observations scaled as in training (the callback copies the statistics in), raw returns
        eval_env = make_eval_env(env_id, normalize, run_seed + 10_000)
    callback = EvalCurveCallback(
        eval_env, eval_freq, n_eval_episodes, csv_path=eval_csv, run_info={"env": env_id, "algo": label, "seed": seed}, verbose=verbose
    )
    resumed_at = list(state["resumed_at"]) + [state["step"]] if state is not None else []
    if state is not None:
        callback.load_state_dict(state["eval"])
    callbacks = [callback]
    if checkpoint_freq:
        run_state = lambda: {"config": config, "resumed_at": resumed_at, "eval": callback.state_dict()}  # noqa: E731
        callbacks.append(RunCheckpointCallback(checkpoint_dir, checkpoint_freq, run_state, verbose=verbose))
    model.learn(
        total_timesteps=max(steps - model.num_timesteps, 0),
        callback=CallbackList(callbacks),
        progress_bar=progress_bar,
        tb_log_name=f"{label}_seed{seed}",
        reset_num_timesteps=state is None,
    )
    final = callback.rows[-1]
    summary = {
        "env": env_id,
        "algo": label,
        "seed": seed,
        "steps": steps,
        "env_steps": int(model.num_timesteps),
        "eval_freq": eval_freq,
        "n_eval_episodes": n_eval_episodes,
        "overrides": _jsonable(overrides or {}),
        "final_mean_return": final["mean_return"],
        "final_std_return": final["std_return"],
        "wall_clock_s": round(callback.wall_clock, 3),
        "eval_time_s": round(callback.eval_time, 3),
        "env_steps_per_s": round(model.num_timesteps / max(callback.training_time, 1e-9), 1),
        "device": str(model.device),
        "resumed_at": resumed_at,
        "hyperparams": _jsonable(params),
    }
    if save_path is not None:
        if not os.path.splitext(save_path)[1]:
            save_path += ".zip"  # what SB3's save writes: the summary names the real file
        os.makedirs(os.path.dirname(os.path.abspath(save_path)), exist_ok=True)
        model.save(save_path)
        summary["model"] = save_path
        stats = save_stats(model, stats_path(save_path))
        if stats is not None:
            summary["vecnormalize"] = stats
    eval_env.close()
    model.get_env().close()
    if done_json is not None:
        _write_json_atomic(done_json, summary)
    if checkpoint_dir is not None:
        remove_checkpoint(checkpoint_dir)
    return summary


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(tmp, path)


@dataclass(frozen=True)
class RunSpec:
    """One (env, algo, seed) run of a compare, fully resolved (no defaults left to the child).

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
        """Folder name of the run (file-system safe)."""
        return f"{self.env_id.replace('/', '-')}__{self.algo.replace(':', '-')}__seed{self.seed}"

    @property
    def label(self) -> str:
        """``env algo seed k``, as the compare's log lines name the run."""
        return f"{self.env_id} {self.algo} seed {self.seed}"

    def config(self) -> Dict[str, Any]:
        """What must match for a finished run to be reused on resume."""
        return {
            "env": self.env_id,
            "algo": self.algo,
            "seed": self.seed,
            "steps": self.steps,
            "eval_freq": self.eval_freq,
            "n_eval_episodes": self.n_eval_episodes,
            "overrides": _jsonable(self.overrides),
        }


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
    it needs) is left out (``log`` says why),
    so one compare can put ``sac`` on ``Pendulum-v1`` beside ``diffcat-sac`` on its discretized twin;
    an algo that fits none of the envs is an error.

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
                        env_id,
                        algo,
                        int(seed),
                        run_steps,
                        int(eval_freq or default_eval_freq(run_steps)),
                        int(n_eval_episodes),
                        dict(overrides or {}),
                    )
                )
    return specs


def _resolved_params(spec: RunSpec) -> Dict[str, Any]:
    """The hyperparameters ``spec``'s run trains with, as its ``done.json`` and checkpoint record them."""
    params = load_hyperparams(spec.algo, spec.env_id, overrides=spec.overrides)
    params["n_timesteps"] = spec.steps
    return params


def run_dir(results_dir: str, spec: RunSpec) -> str:
    """:return: the folder of ``spec``'s files."""
    return os.path.join(results_dir, "runs", spec.name)


def read_done(results_dir: str, spec: RunSpec) -> Optional[Dict[str, Any]]:
    """A finished run is reused only if it ran the same configuration *and* the same resolved
    hyperparameters, so editing a ``hyperparams/*.yml`` file retrains the runs it affects.

    :return: the summary of ``spec`` if it finished that way, else None.
    """
    path = os.path.join(run_dir(results_dir, spec), "done.json")
    if not os.path.exists(path):
        return None
    with open(path) as file:
        done = json.load(file)
    config = spec.config()
    stored = {key: done.get(key, {} if key == "overrides" else None) for key in config}
    return done if stored == config and done.get("hyperparams") == _jsonable(_resolved_params(spec)) else None


def checkpoint_dir(results_dir: str, spec: RunSpec) -> str:
    """:return: the folder of ``spec``'s mid-run checkpoint."""
    return os.path.join(run_dir(results_dir, spec), "checkpoint")


def read_resumable(results_dir: str, spec: RunSpec) -> Optional[Dict[str, Any]]:
    """:return: the state of ``spec``'s checkpoint if it is one of this very configuration, else None."""
    state = read_checkpoint(checkpoint_dir(results_dir, spec))
    if state is None:
        return None
    config = run_config(spec.env_id, spec.algo, spec.seed, spec.steps, spec.eval_freq, spec.n_eval_episodes, _resolved_params(spec))
    return None if config_differences(state["config"], config) else state


def _unfinished_status(results_dir: str, spec: RunSpec, training_elsewhere: bool = False) -> Dict[str, Any]:
    """The report-only status of a run without ``done.json``: failed if nothing trains it and the
    compare that last ran it recorded a failure (a checkpoint, if any, still lets the next compare
    go on from it); in progress if a checkpoint of its configuration
    exists (a run spanning sessions, or one still going in another process), or if
    ``training_elsewhere`` (another compare holds its lock) and it has evaluated at least once."""
    state = read_resumable(results_dir, spec)
    log_path = os.path.join(run_dir(results_dir, spec), "log.txt")
    failure = None if training_elsewhere else read_failure(results_dir, spec)
    if failure is not None:
        return {"spec": spec, "status": "failed", "summary": None, "log": log_path, "error": failure}
    if state is not None:
        return {"spec": spec, "status": "in progress", "summary": {"checkpoint_step": state["step"]}, "log": log_path}
    if training_elsewhere and os.path.exists(os.path.join(run_dir(results_dir, spec), "eval.csv")):
        return {"spec": spec, "status": "in progress", "summary": {"checkpoint_step": None}, "log": log_path}
    return {"spec": spec, "status": "missing", "summary": None, "log": ""}


def train_command(
    spec: RunSpec, results_dir: str, device: str = "auto", threads: Optional[int] = 1, checkpoint_freq: Optional[int] = None
) -> List[str]:
    """The command line that trains ``spec`` in a fresh Python process, going on from its checkpoint if it has one.

    :param spec: the run.
    :param results_dir: the compare's results folder.
    :param device: the device of the run.
    :param threads: torch threads of the run (None keeps torch's default).
    :param checkpoint_freq: env steps between checkpoints; None: :func:`default_checkpoint_freq`, 0: none.
    :return: the argument list for ``subprocess``.
    """
    folder = run_dir(results_dir, spec)
    command = [
        sys.executable, "-m", "rl_diffcat.cli", "train", spec.env_id,
        "--algo", spec.algo,
        "--seed", str(spec.seed),
        "--steps", str(spec.steps),
        "--device", device,
        "--eval-freq", str(spec.eval_freq),
        "--eval-episodes", str(spec.n_eval_episodes),
        "--eval-csv", os.path.join(folder, "eval.csv"),
        "--save-path", os.path.join(folder, "model.zip"),
        "--tensorboard-log", os.path.join(folder, "tb"),
        "--done-json", os.path.join(folder, "done.json"),
        "--checkpoint-dir", checkpoint_dir(results_dir, spec),
        "--checkpoint-freq", str(default_checkpoint_freq(spec.steps, spec.eval_freq) if checkpoint_freq is None else checkpoint_freq),
        "--resume",
        "--no-progress",
    ]  # fmt: skip
    if threads is not None:
        command += ["--threads", str(threads)]
    for key, value in spec.overrides.items():
        command += ["--hyperparams", f"{key}={json.dumps(value)}"]
    return command


FAILED_MARKER = "failed.json"  # written beside a run whose training process failed; removed when it starts again


def read_failure(results_dir: str, spec: RunSpec) -> Optional[str]:
    """Why the last training process of ``spec``'s run failed, or None: no failure recorded, or one
    of another configuration (say, with ``--hyperparams`` this report is not given)."""
    try:
        with open(os.path.join(run_dir(results_dir, spec), FAILED_MARKER)) as file:
            failure = json.load(file)
        if failure.get("config", spec.config()) != spec.config():  # markers without a config: older compares
            return None
        return str(failure["reason"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _last_error_line(log_path: str) -> str:
    try:
        with open(log_path) as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_compare(
    specs: Sequence[RunSpec],
    results_dir: str,
    jobs: int = 1,
    device: str = "auto",
    threads: Optional[int] = 1,
    log: Callable[[str], None] = print,
    report_only: bool = False,
    checkpoint_freq: Optional[int] = None,
    progress_poll_s: float = 10.0,
) -> List[Dict[str, Any]]:
    """Run every spec in its own subprocess (``jobs`` at a time), skipping the finished ones.

    A run that crashes is reported (with the last line of its log) and the others go on. A run that
    was interrupted goes on from its last checkpoint; a checkpoint of another configuration (the
    yml files were edited since) is deleted and the run starts over. A run another compare is
    training (its folder's lock is held) is left alone and gets the report-only status.

    :param specs: the runs, from :func:`plan_runs`.
    :param results_dir: the results folder.
    :param jobs: number of runs at a time.
    :param device: the device of every run.
    :param threads: torch threads per run (None keeps torch's default).
    :param log: where progress lines go.
    :param report_only: train nothing; an unfinished run gets the status ``in progress`` if it left a
        checkpoint of this configuration (its summary is then ``{"checkpoint_step": N}``), else
        ``missing`` (to look at the results of a compare that is still going or was interrupted).
        A run another compare is training gets that status too (``checkpoint_step`` None if it has
        evaluated but not checkpointed yet).
    :return: one status dict per spec, in order: ``{"spec", "status"
        (done|skipped|failed|in progress|missing), "summary", "log"}``.
    :param checkpoint_freq: env steps between checkpoints of a run; None: about 10 per run, 0: none.
    :param progress_poll_s: seconds between looks at the runs' ``eval.csv``; each new evaluation is
        logged with the run's speed and time left (:mod:`~rl_diffcat.benchmark.progress`). 0: none.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    statuses: List[Optional[Dict[str, Any]]] = [None] * len(specs)
    pending = []
    for index, spec in enumerate(specs):
        done = read_done(results_dir, spec)
        log_path = os.path.join(run_dir(results_dir, spec), "log.txt")
        if done is not None:
            statuses[index] = {"spec": spec, "status": "skipped", "summary": done, "log": log_path}
        else:
            pending.append(index)
    if report_only:
        for index in pending:
            spec = specs[index]
            statuses[index] = _unfinished_status(results_dir, spec, training_elsewhere=held_elsewhere(run_dir(results_dir, spec)))
        counts = {kind: sum(statuses[index]["status"] == kind for index in pending) for kind in ("in progress", "failed", "missing")}
        log(
            f"report only: {len(specs) - len(pending)} of {len(specs)} runs finished, {counts['in progress']} in progress"
            f" (checkpointed, or training in another compare), {counts['failed']} failed, {counts['missing']} missing"
        )
        for index in pending:
            if statuses[index]["status"] == "failed":
                log(f"FAILED {specs[index].label} ({statuses[index]['error']}) -- see {statuses[index]['log']}")
        return [status for status in statuses if status is not None]
    if len(pending) < len(specs):
        log(f"resume: {len(specs) - len(pending)} of {len(specs)} runs already finished, skipping them")
    lock = threading.Lock()

    def locked_log(line: str) -> None:  # progress lines come from every worker thread
        with lock:
            log(line)
    counter = {"started": 0, "finished": 0}
    unlocked_noted = threading.Event()

    def finish(index: int, status: Dict[str, Any], line: str) -> None:
        """Record a run's status and log ``line`` after the count of runs done."""
        statuses[index] = status
        with lock:
            counter["finished"] += 1
            log(f"[{counter['finished']}/{len(pending)} done, {len(pending) - counter['finished']} left] {line}")

    def run_one(index: int) -> None:
        spec = specs[index]
        folder = run_dir(results_dir, spec)
        os.makedirs(folder, exist_ok=True)
        run_lock = RunLock.acquire(folder)
        if run_lock is None:  # another compare trains it now: leave its files alone
            status = _unfinished_status(results_dir, spec, training_elsewhere=True)
            finish(index, status, f"skipping {spec.label}: another compare is running it ({read_holder(folder)})")
            return
        if not run_lock.locked:
            with lock:
                if not unlocked_noted.is_set():
                    unlocked_noted.set()
                    log(f"note: no flock here ({folder}): runs are not locked against another compare on this folder")
        with run_lock:
            _train_locked(index, spec, folder, run_lock)

    def _train_locked(index: int, spec: RunSpec, folder: str, run_lock: RunLock) -> None:
        log_path = os.path.join(folder, "log.txt")
        done = read_done(results_dir, spec)  # finished by another compare since this one looked
        if done is not None:
            finish(index, {"spec": spec, "status": "skipped", "summary": done, "log": log_path}, f"{spec.label} was finished by another compare")
            return
        for stale_marker in ("done.json", FAILED_MARKER):  # from a run with another configuration, or an earlier failure
            if os.path.exists(os.path.join(folder, stale_marker)):
                os.remove(os.path.join(folder, stale_marker))
        resumable = read_resumable(results_dir, spec)
        if resumable is None:
            remove_checkpoint(checkpoint_dir(results_dir, spec))
        with lock:
            counter["started"] += 1
            start = "start" if resumable is None else f"resume (from step {resumable['step']})"
            log(f"[{counter['started']}/{len(pending)}] {start} {spec.label} ({spec.steps} steps), log: {log_path}")
        tic = time.perf_counter()
        with open(log_path, "a" if resumable is not None else "w") as log_file:
            process = subprocess.Popen(
                train_command(spec, results_dir, device, threads, checkpoint_freq),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=run_lock.inheritable_fds,  # the run stays locked while it trains, even if this compare is killed
            )
            run_lock.describe(train_pid=process.pid)
            if progress_poll_s > 0:
                eval_csv = os.path.join(folder, "eval.csv")
                warmup = int(_resolved_params(spec).get("learning_starts", 0) or 0)  # off-policy agents only
                returncode = wait_reporting_progress(
                    process, eval_csv, f"  {spec.label}", spec.steps, locked_log, progress_poll_s, warmup_steps=warmup
                )
            else:
                returncode = process.wait()
        done = read_done(results_dir, spec) if returncode == 0 else None
        elapsed = time.perf_counter() - tic
        if done is not None:
            finish(
                index,
                {"spec": spec, "status": "done", "summary": done, "log": log_path},
                f"{spec.label}: final return {format_return(done['final_mean_return'])}, {elapsed:.0f} s, {done['env_steps_per_s']:.0f} env-steps/s",
            )
        else:
            reason = (
                f"exit code {returncode}: {_last_error_line(log_path)}"
                if returncode != 0
                else "it finished, but its hyperparameters no longer match the yml files (edited during the run?)"
            )
            with open(os.path.join(folder, FAILED_MARKER), "w") as file:  # so that --report-only says so later
                json.dump({"reason": reason, "config": spec.config()}, file)
            finish(index, {"spec": spec, "status": "failed", "summary": None, "log": log_path}, f"FAILED {spec.label} ({reason}) -- see {log_path}")

    if jobs == 1:
        for index in pending:
            run_one(index)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(run_one, pending))
    for index, status in enumerate(statuses):  # another compare may have finished a run it held meanwhile
        if status is not None and status["status"] in ("in progress", "missing"):
            done = read_done(results_dir, status["spec"])
            if done is not None:
                statuses[index] = {**status, "status": "skipped", "summary": done}
    return [status for status in statuses if status is not None]
