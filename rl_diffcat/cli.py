"""``rl-diffcat``: train one agent, compare agents over envs and seeds, or evaluate a saved model.

Examples::

    rl-diffcat train CartPole-v1 --algo diffcat-sac --sampler redge --steps 50000 --seed 0
    rl-diffcat compare --preset quick
    rl-diffcat compare --envs CartPole-v1 Acrobot-v1 --algos ppo diffcat-sac --seeds 5 --steps 50000 --jobs 2
    rl-diffcat evaluate CartPole-v1 --algo diffcat-sac --seed 0 --episodes 20
    rl-diffcat envs

Heavy imports (torch, stable-baselines3, the agents) happen inside the commands, so ``--help``
is fast and this module imports even when an optional agent is missing.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import yaml

from rl_diffcat import __version__
from rl_diffcat.benchmark.algos import (
    ALGOS,
    action_space_of,
    algo_label,
    check_action_space,
    check_hyperparams,
    default_model_path,
    load_yaml,
    parse_algo,
)
from rl_diffcat.benchmark.presets import COMPARE_DEFAULTS, PRESETS


def _parse_overrides(items: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``["learning_rate=1e-3", "policy_kwargs.net_arch=[64, 64]"]`` -> dict (values parsed as YAML)."""
    overrides: Dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--hyperparams expects KEY=VALUE items (e.g. learning_rate=1e-3), got {item!r}")
        try:
            overrides[key.strip()] = load_yaml(value)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ValueError(f"--hyperparams {item!r}: the value is not valid YAML ({problem})") from None
    return overrides


def _split_list(values: Optional[Sequence[str]]) -> Optional[List[str]]:
    """Accept both ``--algos a b`` and ``--algos a,b``; a name given twice counts once (else its
    runs would enter the statistics twice)."""
    if values is None:
        return None
    return list(dict.fromkeys(part for value in values for part in value.split(",") if part))


def _algo_help() -> str:
    lines = [f"{name}: {spec.description}" for name, spec in ALGOS.items()]
    return "; ".join(lines) + ". ALGO:SAMPLER (e.g. diffcat-sac:gumbel_softmax) picks the sampler."


def build_parser() -> argparse.ArgumentParser:
    """:return: the ``rl-diffcat`` argument parser."""
    parser = argparse.ArgumentParser(prog="rl-diffcat", description="Discrete-action RL with pathwise gradients through ReDGE.")
    parser.add_argument("--version", action="version", version=f"rl-diffcat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    common = _common_arguments()
    _add_train(commands, common)
    _add_compare(commands, common)
    _add_evaluate(commands)
    _add_envs(commands)
    return parser


def _common_arguments() -> argparse.ArgumentParser:
    """The flags ``train`` and ``compare`` share."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks cuda when available")
    common.add_argument("--eval-freq", type=int, default=None, help="env steps between evaluations (default: steps/20)")
    common.add_argument("--eval-episodes", type=int, default=None, help="deterministic episodes per evaluation (default 10)")
    common.add_argument("--hyperparams", nargs="+", action="extend", metavar="KEY=VALUE", help="override hyperparameters of the yml files")
    common.add_argument("--threads", type=int, default=None, help="torch CPU threads (compare: per run, default --cpus-per-run)")
    return common


def _add_train(commands: Any, common: argparse.ArgumentParser) -> None:
    """``rl-diffcat train``: one agent on one env."""
    train = commands.add_parser("train", parents=[common], help="train one agent on one env", description=_algo_help())
    train.add_argument("env_id", help="gymnasium env id, e.g. CartPole-v1")
    train.add_argument("--algo", required=True, help=f"one of {', '.join(ALGOS)} (optionally ALGO:SAMPLER)")
    train.add_argument("--sampler", default=None, help="sampler of diffcat-sac (redge, gumbel_softmax, ...); ppo-diffcat stores it, but PPO never calls rsample")
    train.add_argument("--steps", type=int, default=None, help="env steps (default: n_timesteps of the hyperparameter file)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save-path", default=None, help="model .zip (default models/<env>_<algo>_seed<seed>.zip)")
    train.add_argument("--tensorboard-log", default="runs", help="TensorBoard folder (default runs/)")
    train.add_argument("--eval-csv", default=None, help="write the evaluation curve to this CSV")
    train.add_argument("--done-json", default=None, help="write the run summary here when training finished")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    train.add_argument("--verbose", type=int, default=0, help="SB3 verbosity (1 also prints every evaluation)")
    train.add_argument(
        "--checkpoint-freq", type=int, default=0, help="env steps between mid-run checkpoints, for --resume (default 0: none)"
    )
    train.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (default: the save path without .zip, plus _checkpoint)")
    train.add_argument(
        "--resume", action="store_true", help="go on from the checkpoint of an interrupted run of the same configuration, if there is one"
    )


def _add_compare(commands: Any, common: argparse.ArgumentParser) -> None:
    """``rl-diffcat compare``: every (env, algo, seed) as a Ray Tune trial, then the report."""
    compare = commands.add_parser(
        "compare", parents=[common], help="train every (env, algo, seed) as a Ray Tune trial (local Ray, or a cluster with --address) and aggregate", description=_algo_help()
    )
    compare.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a named configuration; other flags override it")
    compare.add_argument("--envs", nargs="+", default=None, help=f"env ids (default {COMPARE_DEFAULTS['envs']})")
    compare.add_argument("--algos", nargs="+", default=None, help=f"algo labels among {', '.join(ALGOS)} (ALGO:SAMPLER allowed)")
    compare.add_argument("--seeds", type=int, default=None, help="number of seeds: runs seeds 0..N-1 (default 3)")
    compare.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds FIRST..FIRST+N-1 instead, to add seeds to a results folder or split them across machines (default 0)",
    )
    compare.add_argument("--steps", type=int, default=None, help="env steps per run (default: n_timesteps of the yml files)")
    compare.add_argument(
        "--results", default=None, help="results folder, local or on a shared filesystem, or a file:// URI (default results/<preset> or results/compare)"
    )
    compare.add_argument("--jobs", type=int, default=1, help="runs at a time; the local Ray instance gets jobs x cpus-per-run CPUs (default 1)")
    compare.add_argument(
        "--address", default=None, help="join this Ray cluster (HOST:PORT, auto, or ray://HOST:10001) instead of starting a local Ray"
    )
    compare.add_argument("--cpus-per-run", type=float, default=1, help="CPUs Ray reserves for each run; also its torch threads (default 1)")
    compare.add_argument(
        "--gpus-per-run", type=float, default=None,
        help="GPUs Ray reserves for each run; 0.25 packs four runs on one GPU (default: none on the CPU, else the GPUs split between --jobs runs)",
    )  # fmt: skip
    compare.add_argument(
        "--checkpoint-freq",
        type=int,
        default=None,
        help="env steps between mid-run checkpoints, from which an interrupted run resumes (default: about 10 per run; 0: none)",
    )
    compare.add_argument(
        "--report-only", action="store_true", help="train nothing: write the table and plots of the runs finished (or checkpointed) so far"
    )
    compare.add_argument(
        "--overlay",
        action="store_true",
        default=None,
        help="also plot every (env, algo) in one figure, for envs on one return scale (default: the preset's choice)",
    )


def _add_evaluate(commands: Any) -> None:
    """``rl-diffcat evaluate``: play a saved model."""
    evaluate = commands.add_parser(
        "evaluate",
        help="play a saved model for some episodes and print its returns",
        description="Load a model saved by `rl-diffcat train` (or a compare's runs/<run>/model.zip) and play it.",
    )
    evaluate.add_argument(
        "env_id", nargs="?", default=None, help="the env the model was trained on, e.g. CartPole-v1 (default: from the run's done.json)"
    )
    evaluate.add_argument(
        "--algo",
        default=None,
        help=f"the algo that trained it: one of {', '.join(ALGOS)} (optionally ALGO:SAMPLER; default: from the run's done.json)",
    )
    evaluate.add_argument("--sampler", default=None, help="the sampler it was trained with, only to find the default model file")
    evaluate.add_argument("--seed", type=int, default=0, help="the training seed, only to find the default model file (default 0)")
    evaluate.add_argument("--model", default=None, help="the model .zip (default: where train saves it, models/<env>_<algo>_seed<seed>.zip)")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to play (default 10)")
    evaluate.add_argument("--eval-seed", type=int, default=0, help="seed of the env's first reset and of the policy's sampling (default 0)")
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions from the policy instead of taking its mode")
    evaluate.add_argument("--render", action="store_true", help="show the episodes in a window (render_mode='human')")
    evaluate.add_argument(
        "--video", default=None, metavar="DIR",
        help="write every episode to DIR/<model>-episode-<i>.mp4, named after the model file (needs moviepy)",
    )
    evaluate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks cuda when available")
    evaluate.add_argument(
        "--vecnormalize",
        default=None,
        metavar="PATH",
        help="VecNormalize statistics of a model trained with normalize (default: <model>_vecnormalize.npz when it exists; rl-zoo3's vecnormalize.pkl needs --trust-file)",
    )
    evaluate.add_argument("--json", default=None, help="also write the returns and lengths of every episode to this JSON file")
    evaluate.add_argument(
        "--trust-file",
        action="store_true",
        help="also load files that can run code when loaded: a model whose pickled entries reach beyond what rl-diffcat's files hold, "
        "pickled VecNormalize statistics (rl-zoo3's vecnormalize.pkl, SB3's VecNormalize.save). Only for files you trust",
    )


def _add_envs(commands: Any) -> None:
    """``rl-diffcat envs``: our registered env ids."""
    envs = commands.add_parser(
        "envs", help="list our registered env ids, their action spaces and the extras they need",
        description="The rl_diffcat/ env ids (importing rl_diffcat.envs registers them with gymnasium).",
    )
    envs.add_argument("--no-spaces", action="store_true", help="do not build each env to show its action space")


def _envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from rl_diffcat.envs import extra_installed, list_envs

    for env_id, extra in list_envs().items():
        installed = extra is None or extra_installed(extra)
        missing = "" if installed else f": not installed, pip install 'rl-diffcat[{extra}]'"
        needs = "" if extra is None else f"  [extra {extra}{missing}]"
        space = ""
        if installed and not args.no_spaces:
            env = gym.make(env_id)
            masks = "  action_masks()" if env.has_wrapper_attr("action_masks") else ""
            space = f"  {env.action_space}{masks}"
            env.close()
        print(f"{env_id}{space}{needs}")
    return 0


def _check_device(device: str) -> None:
    """SB3 silently falls back to the CPU when CUDA is missing; say so instead."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device; use --device auto or --device cpu")


def _check_at_least(args: argparse.Namespace, minimums: Dict[str, int]) -> None:
    """Refuse a flag given below its minimum (0 evaluation episodes, say) instead of replacing it."""
    for name, minimum in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")


# Flags of both commands that count something, with the smallest value each accepts.
_COUNT_FLAGS = {"steps": 1, "eval_freq": 1, "eval_episodes": 1, "threads": 1, "checkpoint_freq": 0}


def _check_train_outputs(args: argparse.Namespace, save_path: str, checkpoint_dir: str) -> None:
    """Refuse output paths that cannot be written before anything trains (a model trained for
    hours was lost to a --save-path inside a file)."""
    from rl_diffcat.output_paths import check_writable_file, check_writable_folder

    check_writable_file(save_path, "--save-path")
    for flag, path in (("--eval-csv", args.eval_csv), ("--done-json", args.done_json)):
        if path is not None:
            check_writable_file(path, flag)
    if args.tensorboard_log:
        check_writable_folder(args.tensorboard_log, "--tensorboard-log")
    if args.checkpoint_freq or args.resume:
        check_writable_folder(checkpoint_dir, "--checkpoint-dir")


def _train(args: argparse.Namespace) -> int:
    import torch

    from rl_diffcat.benchmark.runner import train_run

    _check_device(args.device)
    _check_at_least(args, _COUNT_FLAGS)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    label = algo_label(args.algo, args.sampler)
    save_path = args.save_path or default_model_path(args.env_id, label, args.seed)
    checkpoint_dir = args.checkpoint_dir or f"{save_path[:-4] if save_path.endswith('.zip') else save_path}_checkpoint"
    _check_train_outputs(args, save_path, checkpoint_dir)
    summary = train_run(
        args.env_id,
        args.algo,
        seed=args.seed,
        steps=args.steps,
        sampler=args.sampler,
        overrides=_parse_overrides(args.hyperparams),
        device=args.device,
        eval_freq=args.eval_freq,
        n_eval_episodes=10 if args.eval_episodes is None else args.eval_episodes,
        eval_csv=args.eval_csv,
        save_path=save_path,
        tensorboard_log=args.tensorboard_log,
        done_json=args.done_json,
        progress_bar=not args.no_progress,
        verbose=args.verbose,
        checkpoint_dir=checkpoint_dir if (args.checkpoint_freq or args.resume) else None,
        checkpoint_freq=args.checkpoint_freq,
        resume=args.resume,
        log=lambda line: print(line, flush=True),
    )
    print(
        f"{summary['algo']} on {summary['env']} (seed {summary['seed']}, {summary['env_steps']} env steps, device {summary['device']}): "
        f"final evaluation {summary['final_mean_return']:.2f} +/- {summary['final_std_return']:.2f} "
        f"over {summary['n_eval_episodes']} deterministic episodes"
    )
    resumed = f", resumed at steps {summary['resumed_at']}" if summary["resumed_at"] else ""
    print(f"wall-clock {summary['wall_clock_s']:.1f} s, {summary['env_steps_per_s']:.0f} env-steps/s (training only){resumed}")
    stats = f" (VecNormalize statistics: {summary['vecnormalize']})" if "vecnormalize" in summary else ""
    print(f"model saved to {summary['model']}{stats}; TensorBoard logs in {args.tensorboard_log}")
    return 0


def _results_folder(path: str) -> str:
    """The results folder as a local path, checked writable before anything trains (``file://`` URIs
    name a local or shared-filesystem folder)."""
    from urllib.parse import urlparse

    parsed = urlparse(path)
    if parsed.scheme == "file":
        path = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"--results {path}: only local or shared-filesystem folders (or file:// URIs) are supported, not {parsed.scheme}://")
    from rl_diffcat.output_paths import check_writable_folder

    check_writable_folder(path, "--results")
    os.makedirs(path, exist_ok=True)
    return path


def _compare(args: argparse.Namespace) -> int:
    from rl_diffcat.benchmark.report import write_results
    from rl_diffcat.compare.engine import import_tune, run_compare
    from rl_diffcat.compare.grid import plan_runs

    _check_device(args.device)
    _check_at_least(args, {**_COUNT_FLAGS, "seeds": 1, "jobs": 1, "first_seed": 0})
    for flag in ("cpus_per_run", "gpus_per_run"):
        value = getattr(args, flag)
        if value is not None and (value < 0 or (flag == "cpus_per_run" and value == 0)):
            raise ValueError(f"--{flag.replace('_', '-')} must be {'> 0' if flag == 'cpus_per_run' else '>= 0'}, got {value:g}")
    config = dict(COMPARE_DEFAULTS)
    if args.preset:
        config.update(PRESETS[args.preset])
        config["results"] = PRESETS[args.preset].get("results", f"results/{args.preset}")
    given = {
        "envs": _split_list(args.envs),
        "algos": _split_list(args.algos),
        "seeds": args.seeds,
        "steps": args.steps,
        "eval_freq": args.eval_freq,
        "eval_episodes": args.eval_episodes,
        "results": args.results,
        "overlay": args.overlay,
    }
    config.update({key: value for key, value in given.items() if value is not None})
    overrides = _parse_overrides(args.hyperparams)
    if not args.report_only:
        import_tune()  # without Ray: which extra to install, before anything else
    specs = plan_runs(
        config["envs"],
        config["algos"],
        range(args.first_seed, args.first_seed + config["seeds"]),
        steps=config["steps"],
        eval_freq=config["eval_freq"],
        n_eval_episodes=config["eval_episodes"],
        overrides=overrides,
        log=lambda line: print(line, flush=True),
    )
    pairs = list(dict.fromkeys((spec.env_id, spec.algo) for spec in specs))
    for env_id, algo in pairs:  # refuse an override some algo does not take before anything trains
        try:
            check_hyperparams(algo, env_id, overrides)
        except ValueError as error:
            hint = "; --hyperparams apply to every algo of a compare: give this one to a compare of the algos that take it"
            raise ValueError(f"{error}{hint if overrides else ''}") from None
    results = _results_folder(config["results"])
    left_out = len(config["envs"]) * len(config["algos"]) - len(pairs)
    where = f"on the Ray cluster at {args.address}" if args.address else "on a local Ray instance"
    print(
        f"compare: {len(specs)} runs ({len(config['envs'])} envs x {len(config['algos'])} algos x {config['seeds']} seeds"
        + (f" from seed {args.first_seed}" if args.first_seed else "")
        + (f", less the {left_out} (env, algo) pair{'s' if left_out > 1 else ''} left out above" if left_out else "")
        + "), "
        + (f"{args.jobs} at a time {where}, " if not args.report_only else "")
        + f"results in {config['results']}",
        flush=True,
    )
    tic = time.perf_counter()
    statuses = run_compare(
        specs,
        results,
        jobs=args.jobs,
        device=args.device,
        threads=args.threads,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        address=args.address,
        log=lambda line: print(line, flush=True),
        report_only=args.report_only,
        checkpoint_freq=args.checkpoint_freq,
    )
    written = write_results(statuses, results, overlay=config["overlay"])
    failed = [status for status in statuses if status["status"] == "failed"]
    missing = sum(status["status"] == "missing" for status in statuses)
    in_progress = sum(status["status"] == "in progress" for status in statuses)
    print(
        f"compare finished in {time.perf_counter() - tic:.0f} s: {len(statuses) - len(failed) - missing - in_progress} runs ok, "
        f"{len(failed)} failed" + (f", {in_progress} in progress" if in_progress else "")
        + (f", {missing} not run yet" if missing else "")
    )
    for kind in ("markdown", "csv", "png"):
        for path in written[kind]:
            print(f"  wrote {path}")
    if not args.report_only and (missing or in_progress):  # Tune stopped early (Ctrl-C): the report holds the runs so far
        raise KeyboardInterrupt
    return 1 if failed else 0


def _fill_from_done_json(args: argparse.Namespace) -> None:
    """Take the env and algo left out of ``evaluate`` from the ``done.json`` beside ``--model``
    (a compare's ``runs/<run>/`` folder, or ``train --done-json`` written there)."""
    import json

    where = "give ENV_ID and --algo, or a --model whose folder holds the run's done.json (a compare's runs/<run>/model.zip)"
    if args.model is None:
        raise ValueError(f"which model? {where}")
    done_path = os.path.join(os.path.dirname(os.path.abspath(args.model)), "done.json")
    if not os.path.isfile(done_path):
        raise ValueError(f"no done.json beside {args.model} to read the env and algo from: {where}")
    with open(done_path) as file:
        done = json.load(file)
    args.env_id = args.env_id or done.get("env")
    args.algo = args.algo or done.get("algo")
    if args.env_id is None or args.algo is None:
        raise ValueError(f"{done_path} does not name the run's env and algo: {where}")


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from rl_diffcat.benchmark.evaluation import evaluate_saved_model

    _check_device(args.device)
    _check_at_least(args, {"episodes": 1})
    if args.env_id is None or args.algo is None:
        _fill_from_done_json(args)
    label = algo_label(args.algo, args.sampler)
    # An unknown env, algo or sampler, or an algo that cannot act in the env, is named before the file is looked for.
    check_action_space(parse_algo(label)[0], args.env_id, action_space_of(args.env_id))
    path = args.model or default_model_path(args.env_id, label, args.seed)
    if args.model is None and not os.path.isfile(path):
        # models of the same algo saved with a --sampler are named ALGO-SAMPLER: point at them
        stem = default_model_path(args.env_id, f"{label}:", args.seed).replace("-_seed", "-*_seed")
        others = sorted(glob.glob(stem)) if ":" not in label else []
        hint = f" (found {', '.join(others)}: pass the --sampler it was trained with, or --model)" if others else ""
        raise ValueError(
            f"no saved model at {path}{hint}; train one with `rl-diffcat train {args.env_id} --algo {label} --seed {args.seed}` "
            "or name the file with --model"
        )
    result = evaluate_saved_model(
        args.env_id,
        label,
        path,
        n_episodes=args.episodes,
        deterministic=not args.stochastic,
        seed=args.eval_seed,
        device=args.device,
        render=args.render,
        vecnormalize=args.vecnormalize,
        video_folder=args.video,
        trust_file=args.trust_file,
    )
    mode = "stochastic" if args.stochastic else "deterministic"
    print(
        f"{label} on {args.env_id} ({result['model']}, trained {result['trained_steps']} env steps, device {result['device']}): "
        f"return {result['mean_return']:.2f} +/- {result['std_return']:.2f} over {args.episodes} {mode} episodes "
        f"(min {result['min_return']:.2f}, max {result['max_return']:.2f}, mean length {sum(result['lengths']) / args.episodes:.1f})"
        + (f"; observations normalized with {result['vecnormalize']}" if result["vecnormalize"] else "")
    )
    if result["videos"]:
        n_videos = len(result["videos"])
        print(f"wrote {n_videos} video{'s' if n_videos != 1 else ''} to {args.video}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as file:
            json.dump(result, file, indent=2)
        print(f"wrote {args.json}")
    return 0


_COMMANDS = {"train": _train, "compare": _compare, "evaluate": _evaluate, "envs": _envs}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``rl-diffcat`` console script.

    :param argv: arguments (default: ``sys.argv[1:]``).
    :return: the exit code: 0 on success, 1 when a compare run failed, 2 on a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ValueError as error:
        print(f"rl-diffcat {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = {
            "compare": "re-run the same command: finished runs are skipped and the others go on from their checkpoints",
            "train": "a run started with --checkpoint-freq goes on from its last checkpoint when re-run with --resume",
        }.get(args.command)
        print(f"rl-diffcat {args.command}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
