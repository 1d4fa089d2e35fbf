"""Training one run in-process: ``rl-diffcat train``, and each run of a compare (as a Ray Tune
trial, :mod:`rl_diffcat.compare.trainable`), build and train the model here, so a seeded run
trains the same either way.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rl_diffcat.benchmark import checkpoint
from rl_diffcat.benchmark.algos import algo_label, load_hyperparams, load_model, make_model
from rl_diffcat.benchmark.callbacks import EvalCurveCallback
from rl_diffcat.benchmark.checkpoint import (
    CheckpointError,
    RunCheckpointCallback,
    config_differences,
    load_replay_buffer,
    read_checkpoint,
    remove_checkpoint,
)
from rl_diffcat.benchmark.normalization import make_eval_env, normalize_kwargs, save_stats, stats_path
from rl_diffcat.output_paths import save_with_fallback


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
        "hyperparams": jsonable(params),
    }


def _restore(
    folders: Sequence[str],
    config: Dict[str, Any],
    strict: bool,
    normalize: bool,
    load: Callable[[Dict[str, Any]], Any],
    log: Callable[[str], None],
) -> Tuple[Optional[Dict[str, Any]], Any]:
    """Go on from the newest readable checkpoint among ``folders`` (newest first).

    A checkpoint whose ``state.json``, model, replay buffer or statistics cannot be read is named
    in a ``log`` line and passed over for the one before it (#34: a damaged file never blocks a run).

    :param strict: a checkpoint of another configuration is an error (``train --resume``); else it is passed over.
    :param load: builds the model from a checkpoint state (raises if a file is unreadable).
    :return: ``(state, model)``, or ``(None, None)`` when no checkpoint can be gone on from.
    """
    damaged = False
    for folder in folders:
        try:
            state = read_checkpoint(folder)
        except CheckpointError as error:
            log(f"cannot read {error.path} ({error.reason}): passing over that checkpoint")
            damaged = True
            continue
        if state is None:
            continue
        differences = config_differences(state["config"], config)
        if differences or (normalize and state["vecnormalize"] is None):
            problem = (
                f"is of another run (it differs in {', '.join(differences)})" if differences else "holds no VecNormalize statistics to go on with"
            )
            if strict:
                raise ValueError(f"the checkpoint in {folder} {problem}; delete that folder, or run without --resume to start over")
            log(f"the checkpoint in {folder} {problem}: passing over it")
            continue
        try:
            model = load(state)
        except Exception as error:  # noqa: BLE001 - any unreadable file: truncated zip, bad pickle, wrong shapes
            files = [state[key] for key in ("model", "vecnormalize", "replay_buffer") if state.get(key)]
            log(f"cannot read the checkpoint {' / '.join(files)} ({type(error).__name__}: {error}): passing over that checkpoint")
            damaged = True
            continue
        if damaged:
            log(f"going on from the previous readable checkpoint, at step {state['step']}")
        return state, model
    if damaged:
        log("no readable checkpoint is left: starting over from scratch")
    return None, None


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
    resume_from: Sequence[str] = (),
    save_checkpoint: Optional[Callable[[Any, Dict[str, Any]], None]] = None,
    on_evaluation: Optional[Callable[[Dict[str, Any]], None]] = None,
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
    :param done_json: where the run summary is written last, or None.
    :param progress_bar: show SB3's tqdm/rich progress bar.
    :param verbose: SB3 verbosity; 1 also prints each evaluation.
    :param checkpoint_dir: folder of the mid-run checkpoint (:mod:`~rl_diffcat.benchmark.checkpoint`);
        it is deleted once the run has finished and its model is saved.
    :param checkpoint_freq: env steps between checkpoints; None or 0 writes none.
    :param resume: go on from the checkpoint in ``checkpoint_dir`` when there is one; a checkpoint of
        another configuration is an error.
    :param log: receives a line when the run resumes, or passes over a checkpoint it cannot read.
    :param resume_from: checkpoint folders to go on from, newest first (a compare's Tune
        checkpoints); unreadable ones and those of another configuration are passed over.
    :param save_checkpoint: with ``checkpoint_freq``, called as ``save_checkpoint(model, state)``
        instead of writing to ``checkpoint_dir`` (a compare hands the checkpoint to Ray Tune).
    :param on_evaluation: receives each new row of the learning curve.
    :return: the run summary (also written to ``done_json``).
    """
    from stable_baselines3.common.callbacks import CallbackList

    params = load_hyperparams(algo, env_id, sampler=sampler, overrides=overrides)
    steps = int(steps if steps is not None else params["n_timesteps"])
    params["n_timesteps"] = steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if checkpoint_freq is not None and checkpoint_freq < 0:
        raise ValueError(f"checkpoint_freq must be >= 0, got {checkpoint_freq}")
    if (checkpoint_freq and save_checkpoint is None or resume) and checkpoint_dir is None:
        raise ValueError("checkpoint_freq and resume need a checkpoint_dir")
    eval_freq = default_eval_freq(steps) if eval_freq is None else eval_freq
    label = algo_label(algo, sampler)
    normalize = normalize_kwargs(params)
    config = run_config(env_id, label, seed, steps, eval_freq, n_eval_episodes, params)

    def load(state: Dict[str, Any]) -> Any:
        # The RNG states are not saved: reseed from (seed, step) so a resumed run is reproducible.
        model = load_model(
            label, env_id, params, state["model"], seed + state["step"], device, tensorboard_log, verbose, state["vecnormalize"]
        )
        if state["replay_buffer"] is not None:
            load_replay_buffer(model, state["replay_buffer"])
        return model

    folders = list(resume_from) + ([checkpoint_dir] if resume and checkpoint_dir is not None else [])
    state, model = _restore(folders, config, strict=resume, normalize=normalize is not None, load=load, log=log)
    if state is not None:
        run_seed = seed + state["step"]
        log(f"resuming {label} on {env_id} (seed {seed}) from its checkpoint at step {state['step']} of {steps}")
    else:
        if checkpoint_freq and checkpoint_dir is not None:
            remove_checkpoint(checkpoint_dir)  # a checkpoint of an earlier run: this one starts over
        run_seed = seed
        model = make_model(label, env_id, params, seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=verbose)
    eval_env = _evaluation_env(env_id, normalize, run_seed + 10_000)
    callback = EvalCurveCallback(
        eval_env, eval_freq, n_eval_episodes, csv_path=eval_csv, run_info={"env": env_id, "algo": label, "seed": seed},
        verbose=verbose, on_row=on_evaluation,
    )  # fmt: skip
    resumed_at = list(state["resumed_at"]) + [state["step"]] if state is not None else []
    if state is not None:
        callback.load_state_dict(state["eval"])
    callbacks = [callback]
    if checkpoint_freq:
        run_state = lambda: {"config": config, "resumed_at": resumed_at, "eval": callback.state_dict()}  # noqa: E731
        if save_checkpoint is not None:
            save = lambda model: save_checkpoint(model, run_state())  # noqa: E731
        else:
            save = lambda model: checkpoint.write_checkpoint(checkpoint_dir, model, run_state())  # noqa: E731
        callbacks.append(RunCheckpointCallback(checkpoint_freq, save, verbose=verbose))
    model.learn(
        total_timesteps=max(steps - model.num_timesteps, 0),
        callback=CallbackList(callbacks),
        progress_bar=progress_bar,
        tb_log_name=f"{label}_seed{seed}",
        reset_num_timesteps=state is None,
    )
    summary = _summary(env_id, label, seed, steps, eval_freq, n_eval_episodes, overrides, params, model, callback, resumed_at)
    if save_path is not None:
        summary.update(_save_model(model, save_path, log))
    eval_env.close()
    model.get_env().close()
    if done_json is not None:
        write_json_atomic(done_json, summary)
    if checkpoint_dir is not None:
        remove_checkpoint(checkpoint_dir)
    return summary


def _evaluation_env(env_id: str, normalize: Optional[Dict[str, Any]], seed: int) -> Any:
    """The env evaluations play on: a seeded ``Monitor``-wrapped env, or with ``normalize`` a
    ``VecNormalize`` one whose observations are scaled as in training (the evaluation callback
    copies the statistics in) and whose returns stay raw."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    if normalize is not None:
        return make_eval_env(env_id, normalize, seed)
    eval_env = Monitor(gym.make(env_id))
    eval_env.reset(seed=seed)
    return eval_env


def _summary(
    env_id: str, label: str, seed: int, steps: int, eval_freq: int, n_eval_episodes: int, overrides: Optional[Dict[str, Any]],
    params: Dict[str, Any], model: Any, callback: EvalCurveCallback, resumed_at: List[int],
) -> Dict[str, Any]:
    """The run summary ``done.json`` holds: the run, its final evaluation, its clocks and hyperparameters."""
    final = callback.rows[-1]
    return {
        "env": env_id,
        "algo": label,
        "seed": seed,
        "steps": steps,
        "env_steps": int(model.num_timesteps),
        "eval_freq": eval_freq,
        "n_eval_episodes": n_eval_episodes,
        "overrides": jsonable(overrides or {}),
        "final_mean_return": final["mean_return"],
        "final_std_return": final["std_return"],
        "wall_clock_s": round(callback.wall_clock, 3),
        "eval_time_s": round(callback.eval_time, 3),
        "env_steps_per_s": round(model.num_timesteps / max(callback.training_time, 1e-9), 1),
        "device": str(model.device),
        "resumed_at": resumed_at,
        "hyperparams": jsonable(params),
    }


def _save_model(model: Any, save_path: str, log: Callable[[str], None]) -> Dict[str, str]:
    """Save the trained model (and its ``VecNormalize`` statistics beside it).

    ``train`` checks the path before training; if saving fails anyway (a full disk, a folder
    removed meanwhile), the model goes to a temporary path that is printed, not lost.

    :return: the summary's ``model`` (and ``vecnormalize``) entries: where the files went.
    """
    if not os.path.splitext(save_path)[1]:
        save_path += ".zip"  # what SB3's save writes: the summary names the real file
    saved = {"model": save_with_fallback(model.save, save_path, log=log)}
    stats = save_stats(model, stats_path(saved["model"]))
    if stats is not None:
        saved["vecnormalize"] = stats
    return saved


def jsonable(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, unknown objects their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half of it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(tmp, path)
