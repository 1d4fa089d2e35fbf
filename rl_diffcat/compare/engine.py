"""Ray and the Tune experiment of a compare: which runs train, where, and what the user sees.

``run_compare`` skips the finished runs (their ``done.json`` matches), hands the others to one
Tune experiment (``<results>/tune/<date-time>/``, a trial per run, named after the run's folder)
and returns a status per run for the report. Ray is a local instance started here and sized by
``--jobs`` unless ``address`` names a cluster to join.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from rl_diffcat.benchmark.checkpoint import CheckpointError, read_checkpoint
from rl_diffcat.benchmark.progress import format_return, progress_line
from rl_diffcat.compare.grid import RunSpec, read_done, run_dir
from rl_diffcat.compare.trainable import TUNE_FOLDER, checkpoint_folders, remove_checkpoints, train_trial

# Ray and Tune read these when they are imported: no usage statistics sent over the network, Tune's
# own console output off (our progress lines are the one live view), no CSV/TensorBoard loggers
# of Tune's (each run writes its curve and TensorBoard logs; Tune keeps its result.json), no
# warning about checkpointing often.
RAY_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_DEDUP_LOGS": "0",
}
MISSING_RAY = "compare runs on Ray Tune, which is not installed: pip install 'rl-diffcat[compare]' (or '.[compare]' in a checkout)"


def import_tune() -> Any:
    """:return: ``ray.tune``, imported with :data:`RAY_ENVIRONMENT`; a ValueError saying which extra to install without it."""
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    try:
        from ray import tune
    except ImportError:
        raise ValueError(MISSING_RAY) from None
    return tune


@contextmanager
def ray_session(address: Optional[str], num_cpus: float, num_gpus: float) -> Iterator[None]:
    """Join the Ray cluster at ``address``, or start a local Ray instance of ``num_cpus`` CPUs and
    ``num_gpus`` GPUs bound to 127.0.0.1, with its session files in a temporary folder removed at
    the end. A Ray already initialised in this process (a test's) is used as it is.
    """
    import_tune()
    import ray

    if ray.is_initialized():
        yield
        return
    temp_dir = None
    if address:
        loopback = address.split("://")[-1].rsplit(":", 1)[0] in ("127.0.0.1", "localhost")
        ray.init(address=address, logging_level="error", log_to_driver=False, **({"_node_ip_address": "127.0.0.1"} if loopback else {}))
    else:
        temp_dir = tempfile.mkdtemp(prefix="rl-diffcat-ray-")  # short: Ray's socket paths must stay under 108 bytes
        ray.init(
            num_cpus=max(1, math.ceil(num_cpus)), num_gpus=num_gpus, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
            include_dashboard=False, logging_level="error", log_to_driver=False, object_store_memory=200 * 1024**2,
        )  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def check_resources(cpus_per_run: float, gpus_per_run: float) -> None:
    """Refuse runs no node of the cluster can hold (Tune would wait for them forever)."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(node.get("CPU", 0) >= cpus_per_run and node.get("GPU", 0) >= gpus_per_run for node in nodes):
        return
    offer = ", ".join(f"{node.get('CPU', 0):g} CPUs + {node.get('GPU', 0):g} GPUs" for node in nodes) or "none"
    raise ValueError(
        f"no node of the Ray cluster can hold a run of {cpus_per_run:g} CPUs and {gpus_per_run:g} GPUs (its nodes offer: {offer}); "
        "lower --cpus-per-run / --gpus-per-run, or add a node that has them"
    )


def default_gpus_per_run(device: str, jobs: int) -> float:
    """A run's GPU share when ``--gpus-per-run`` is not given: none on the CPU; else the cluster's
    GPUs split between the ``jobs`` runs at a time (at most one each)."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) if device != "cpu" else 0
    if not gpus:
        if device == "cuda":
            raise ValueError("--device cuda, but the Ray cluster has no GPU")
        return 0.0
    return min(1.0, gpus / jobs)


def _last_line(path: str) -> str:
    try:
        with open(path) as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def read_failure(results_dir: str, spec: RunSpec) -> Optional[str]:
    """Why the newest trial of ``spec``'s run (of this configuration) failed, from the error file
    Tune wrote beside its checkpoints, or None: it did not fail (or never ran)."""
    trials = sorted(glob.glob(os.path.join(results_dir, TUNE_FOLDER, "*", spec.name)), reverse=True)
    for trial in trials:
        try:
            with open(os.path.join(trial, "params.json")) as file:
                if json.load(file)["run"] != spec.config():
                    continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not os.path.exists(os.path.join(trial, "error.txt")):
            return None
        return _last_line(os.path.join(run_dir(results_dir, spec), "log.txt")) or _last_line(os.path.join(trial, "error.txt"))
    return None


def unfinished_status(results_dir: str, spec: RunSpec, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """The status of a run without a matching ``done.json``: ``failed`` if its newest trial failed,
    ``in progress`` if it has a readable checkpoint of this configuration (``summary`` is then
    ``{"checkpoint_step": N}``), else ``missing``. A checkpoint that cannot be read is named and passed over."""
    log_path = os.path.join(run_dir(results_dir, spec), "log.txt")
    failure = read_failure(results_dir, spec)
    if failure is not None:
        return {"spec": spec, "status": "failed", "summary": None, "log": log_path, "error": failure}
    for folder in checkpoint_folders(results_dir, spec):
        try:
            state = read_checkpoint(folder)
        except CheckpointError as error:
            log(f"{spec.label}: cannot read {error.path} ({error.reason}): passing over that checkpoint")
            continue
        if state is not None and state["config"].get("steps") == spec.steps and state["config"].get("seed") == spec.seed:
            return {"spec": spec, "status": "in progress", "summary": {"checkpoint_step": state["step"]}, "log": log_path}
    return {"spec": spec, "status": "missing", "summary": None, "log": ""}


class _Lines:
    """Where the progress lines go. Tune pickles its callbacks with the experiment state; ``log``
    (``print``, a test's capture) is left out of that."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log: Optional[Callable[[str], None]] = log

    def __call__(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def __getstate__(self) -> Dict[str, Any]:
        return {"log": None}


def _progress_callback(tune: Any, specs: Sequence[RunSpec], results_dir: str, log: Callable[[str], None]) -> Any:
    """The one live view of a compare: a line when a run starts, one per evaluation (its speed and
    the time it still needs, :func:`~rl_diffcat.benchmark.progress.progress_line`), one when it ends."""
    by_name = {spec.name: spec for spec in specs}
    log = _Lines(log)

    class ProgressLines(tune.Callback):
        def __init__(self) -> None:
            self.rows: Dict[str, List[Dict[str, float]]] = {}
            self.started = 0
            self.finished = 0

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            spec = by_name[str(trial)]
            self.started += 1
            log(f"[{self.started}/{len(specs)}] start {spec.label} ({spec.steps} steps), log: {os.path.join(run_dir(results_dir, spec), 'log.txt')}")

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: Dict[str, Any], **info: Any) -> None:
            spec = by_name[str(trial)]
            if "note" in result:
                log(f"  {spec.label}: {result['note']}")
            if "mean_return" in result:
                rows = [row for row in self.rows.get(spec.name, []) if row["step"] < result["step"]]  # a retry rewinds
                rows.append({key: float(result[key]) for key in ("step", "mean_return", "wall_clock")})
                self.rows[spec.name] = rows
                if result["step"] > 0:
                    log(progress_line(f"  {spec.label}", rows, spec.steps, int(result.get("warmup", 0))))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            spec = by_name[str(trial)]
            self.finished += 1
            done = read_done(results_dir, spec) or {}
            final = format_return(done["final_mean_return"]) if "final_mean_return" in done else "n/a"
            log(
                f"[{self.finished}/{len(specs)} done, {len(specs) - self.finished} left] {spec.label}: final return {final}, "
                f"{done.get('wall_clock_s', float('nan')):.0f} s, {done.get('env_steps_per_s', float('nan')):.0f} env-steps/s"
            )

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            spec = by_name[str(trial)]
            self.finished += 1
            log_path = os.path.join(run_dir(results_dir, spec), "log.txt")
            log(f"[{self.finished}/{len(specs)} done, {len(specs) - self.finished} left] FAILED {spec.label} ({_last_line(log_path)}) -- see {log_path}")

    return ProgressLines()


def run_compare(
    specs: Sequence[RunSpec],
    results_dir: str,
    jobs: int = 1,
    device: str = "auto",
    threads: Optional[int] = None,
    cpus_per_run: float = 1,
    gpus_per_run: Optional[float] = None,
    address: Optional[str] = None,
    log: Callable[[str], None] = print,
    report_only: bool = False,
    checkpoint_freq: Optional[int] = None,
    max_failures: int = 2,
) -> List[Dict[str, Any]]:
    """Train every spec that has not finished as a Tune trial (``jobs`` at a time), and say how each run stands.

    :param specs: the runs, from :func:`~rl_diffcat.compare.grid.plan_runs`.
    :param results_dir: the results folder (a local or shared-filesystem path).
    :param jobs: runs at a time; also the CPUs of the local Ray instance (times ``cpus_per_run``).
    :param device: the device of every run.
    :param threads: torch threads per run (None: ``cpus_per_run``, rounded up).
    :param cpus_per_run: CPUs Ray reserves for a run.
    :param gpus_per_run: GPUs (a fraction packs runs on one GPU) Ray reserves for a run; None:
        :func:`default_gpus_per_run`.
    :param address: a Ray cluster to join (``HOST:PORT``, ``auto``, ``ray://HOST:10001``); None starts a local Ray.
    :param log: where progress lines go.
    :param report_only: train nothing (and start no Ray): the unfinished runs get :func:`unfinished_status`.
    :param checkpoint_freq: env steps between checkpoints of a run; None: about 10 per run, 0: none.
    :param max_failures: times Tune retries a failed trial, from its last checkpoint.
    :return: one status dict per spec, in order: ``{"spec", "status" (done|skipped|failed|in progress|missing), "summary", "log"}``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    statuses: List[Optional[Dict[str, Any]]] = [None] * len(specs)
    pending = []
    for index, spec in enumerate(specs):
        done = read_done(results_dir, spec)
        if done is not None:
            statuses[index] = {"spec": spec, "status": "skipped", "summary": done, "log": os.path.join(run_dir(results_dir, spec), "log.txt")}
        else:
            pending.append(index)
    if report_only:
        for index in pending:
            statuses[index] = unfinished_status(results_dir, specs[index], log)
        counts = {kind: sum(statuses[index]["status"] == kind for index in pending) for kind in ("in progress", "failed", "missing")}
        log(
            f"report only: {len(specs) - len(pending)} of {len(specs)} runs finished, {counts['in progress']} in progress"
            f" (checkpointed), {counts['failed']} failed, {counts['missing']} missing"
        )
        for index in pending:
            if statuses[index]["status"] == "failed":
                log(f"FAILED {specs[index].label} ({statuses[index]['error']}) -- see {statuses[index]['log']}")
        return statuses  # type: ignore[return-value]
    if len(pending) < len(specs):
        log(f"resume: {len(specs) - len(pending)} of {len(specs)} runs already finished, skipping them")
    if pending:
        _train([specs[index] for index in pending], results_dir, jobs, device, threads, cpus_per_run, gpus_per_run, address, log, checkpoint_freq, max_failures)
    for index in pending:
        spec = specs[index]
        done = read_done(results_dir, spec)
        if done is not None:
            statuses[index] = {"spec": spec, "status": "done", "summary": done, "log": os.path.join(run_dir(results_dir, spec), "log.txt")}
            remove_checkpoints(results_dir, spec)
        else:
            statuses[index] = unfinished_status(results_dir, spec, log)
    return statuses  # type: ignore[return-value]


def _train(
    specs: Sequence[RunSpec],
    results_dir: str,
    jobs: int,
    device: str,
    threads: Optional[int],
    cpus_per_run: float,
    gpus_per_run: Optional[float],
    address: Optional[str],
    log: Callable[[str], None],
    checkpoint_freq: Optional[int],
    max_failures: int,
) -> None:
    """One Tune experiment of ``specs``, in ``<results>/tune/<date-time>``."""
    tune = import_tune()
    import torch
    from ray.tune.logger import JsonLoggerCallback

    results_dir = os.path.abspath(results_dir)
    local_gpus = torch.cuda.device_count() if device != "cpu" else 0
    with ray_session(address, jobs * cpus_per_run, local_gpus):
        gpus = default_gpus_per_run(device, jobs) if gpus_per_run is None else gpus_per_run
        check_resources(cpus_per_run, gpus)
        name_of = lambda trial: RunSpec.from_config(trial.config["run"]).name  # noqa: E731
        tuner = tune.Tuner(
            tune.with_resources(train_trial, {"cpu": cpus_per_run, "gpu": gpus}),
            param_space={
                "run": tune.grid_search([spec.config() for spec in specs]),
                "results": results_dir,
                "device": device,
                "threads": threads or max(1, math.ceil(cpus_per_run)),
                "checkpoint_freq": checkpoint_freq,
            },
            tune_config=tune.TuneConfig(max_concurrent_trials=jobs, trial_name_creator=name_of, trial_dirname_creator=name_of),
            run_config=tune.RunConfig(
                name=f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",  # sorts by start time
                storage_path=os.path.join(results_dir, TUNE_FOLDER),
                verbose=0,
                callbacks=[_progress_callback(tune, specs, results_dir, log), JsonLoggerCallback()],
                failure_config=tune.FailureConfig(max_failures=max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            ),
        )
        # Tune's warnings (on Ctrl-C: "resume with Tuner.restore(...)") would contradict ours: re-run the same command.
        tune_logger = logging.getLogger("ray.tune")
        level = tune_logger.level
        tune_logger.setLevel(logging.ERROR)
        try:
            tuner.fit()
        finally:
            tune_logger.setLevel(level)
