"""``rl-diffcat compare`` on Ray Tune: the report, resume, retries from checkpoints, damaged
checkpoints, a second Ray node, and the errors a user meets before anything trains.

One local Ray instance (2 CPUs, bound to 127.0.0.1, its session files in a temporary folder) is
shared by the tests of this module; the compares find it initialised and use it. Tests that start
Ray themselves (a killed compare, a two-node cluster) do it in a child process and stop every
process it left by its id. Budgets are a few hundred CartPole steps: plumbing, not learning.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pandas as pd
import pytest
import torch

pytest.importorskip("ray.tune")

from rl_diffcat.benchmark import checkpoint as checkpoint_module  # noqa: E402
from rl_diffcat.benchmark.report import write_results  # noqa: E402
from rl_diffcat.benchmark.runner import train_run  # noqa: E402
from rl_diffcat.cli import main  # noqa: E402
from rl_diffcat.compare import grid  # noqa: E402
from rl_diffcat.compare.engine import RAY_ENVIRONMENT, run_compare  # noqa: E402
from rl_diffcat.compare.grid import RunSpec, plan_runs, read_done, run_dir  # noqa: E402
from rl_diffcat.compare.trainable import TUNE_FOLDER, checkpoint_folders  # noqa: E402

ENV = "CartPole-v1"
COMPARE_ALGOS = ["ppo", "diffcat-sac"]
SAC_SMOKE = {"learning_starts": 100, "batch_size": 32, "policy_kwargs.net_arch": [32, 32]}


def _ray_processes(marker):
    """Ids of the live processes whose command line holds ``marker`` (a Ray temp folder), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                if marker.encode() in file.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _kill_leftovers(marker):
    """Stop, by id, every process started under the Ray temp folder ``marker``; :return: their ids."""
    left = [pid for pid in _ray_processes(marker) if pid != os.getpid()]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray of 2 CPUs for the module, bound to loopback, stopped at the end."""
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    import ray

    temp_dir = tempfile.mkdtemp(prefix="rdt-")
    ray.init(num_cpus=2, num_gpus=0, _node_ip_address="127.0.0.1", _temp_dir=temp_dir, include_dashboard=False,
             logging_level="error", log_to_driver=False, object_store_memory=100 * 1024**2)  # fmt: skip
    yield
    ray.shutdown()
    _kill_leftovers(temp_dir)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _trials(results):
    """``(experiment, trial)`` folder names under ``results/tune``."""
    root = os.path.join(results, TUNE_FOLDER)
    return [(experiment, trial) for experiment in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, experiment))
            for trial in sorted(os.listdir(os.path.join(root, experiment))) if os.path.isdir(os.path.join(root, experiment, trial))]  # fmt: skip


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    """One compare of two algos x 2 seeds, 2 runs at a time, through the CLI."""
    results = str(tmp_path_factory.mktemp("compare") / "results")
    argv = ["compare", "--envs", ENV, "--algos", ",".join(COMPARE_ALGOS), "--seeds", "2", "--steps", "300"]
    argv += ["--eval-freq", "150", "--eval-episodes", "2", "--jobs", "2", "--device", "cpu", "--results", results]
    argv += ["--hyperparams", "policy_kwargs.net_arch=[32, 32]"]  # overrides must survive resume too
    assert main(argv) == 0
    return results, argv


def test_compare_writes_csv_png_and_table_with_every_run(compare_dir):
    results, _ = compare_dir
    curves = pd.read_csv(os.path.join(results, "eval_curves.csv"))
    expected = {(algo, seed) for algo in COMPARE_ALGOS for seed in (0, 1)}
    assert set(zip(curves["algo"], curves["seed"])) == expected
    assert (curves.groupby(["algo", "seed"])["step"].min() == 0).all()
    assert not curves.duplicated(["algo", "seed", "step"]).any()
    runs = pd.read_csv(os.path.join(results, "runs.csv"))
    assert set(zip(runs["algo"], runs["seed"])) == expected and (runs["status"] == "done").all()
    assert (runs["wall_clock_s"] > 0).all() and (runs["env_steps_per_s"] > 0).all()
    mean_eval = curves.groupby(["algo", "seed"])["mean_return"].mean()
    for row in runs.itertuples():
        assert row.mean_eval_return == pytest.approx(mean_eval[row.algo, row.seed])
    for png in (f"learning_curves_{ENV}.png", "final_scores.png"):
        with open(os.path.join(results, png), "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(os.path.join(results, "summary.md")).read()
    for algo in COMPARE_ALGOS:
        assert sum(line.startswith(f"| {algo} | {seed} | done |") for line in table.splitlines() for seed in (0, 1)) == 2
        assert f"| {algo} | 2 | 300 |" in table  # the aggregate row with the IQM
    # Each run was one Tune trial of one experiment; a finished run keeps no checkpoint.
    assert sorted(trial for _, trial in _trials(results)) == sorted(os.listdir(os.path.join(results, "runs")))
    assert not any(checkpoint_folders(results, RunSpec.from_config(json.load(open(os.path.join(results, "runs", name, "done.json")))
                   | {"n_eval_episodes": 2})) for name in os.listdir(os.path.join(results, "runs")))  # fmt: skip
    assert _saved_policy(os.path.join(results, "runs", f"{ENV}__diffcat-sac__seed0", "model.zip"))["num_timesteps"] >= 300


def test_compare_resume_skips_finished_runs(compare_dir, capsys):
    results, argv = compare_dir
    markers = [os.path.join(results, "runs", name, "done.json") for name in os.listdir(os.path.join(results, "runs"))]
    before = {path: os.stat(path).st_mtime_ns for path in markers}
    experiments = len(os.listdir(os.path.join(results, TUNE_FOLDER)))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{len(markers)} of {len(markers)} runs already finished" in out and "start" not in out
    assert {path: os.stat(path).st_mtime_ns for path in markers} == before
    assert len(os.listdir(os.path.join(results, TUNE_FOLDER))) == experiments, "no Tune experiment for nothing to train"


def test_adding_a_seed_to_a_finished_compare_trains_exactly_one_run(compare_dir, tmp_path, capsys):
    results = str(tmp_path / "results")
    shutil.copytree(compare_dir[0], results)
    argv = list(compare_dir[1])
    argv[argv.index("--results") + 1] = results
    argv[argv.index("--seeds") + 1] = "3"
    argv[argv.index("--algos") + 1] = "ppo"
    before = set(_trials(results))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 of 3 runs already finished" in out and f"[1/1] start {ENV} ppo seed 2" in out
    assert [trial for _, trial in set(_trials(results)) - before] == [f"{ENV}__ppo__seed2"]
    runs = pd.read_csv(os.path.join(results, "runs.csv"))
    assert sorted(runs["seed"]) == [0, 1, 2] and (runs["status"] == "done").all()


def test_finished_run_is_stale_when_its_hyperparameters_change(compare_dir, monkeypatch):
    results, _ = compare_dir
    overrides = {"policy_kwargs.net_arch": [32, 32]}
    (spec,) = plan_runs([ENV], ["ppo"], [0], steps=300, eval_freq=150, n_eval_episodes=2, overrides=overrides)
    assert read_done(results, spec) is not None
    original = grid.load_hyperparams

    def edited_yml(*args, **kwargs):  # as if someone changed ppo.yml after the run
        return {**original(*args, **kwargs), "gamma": 0.5}

    monkeypatch.setattr(grid, "load_hyperparams", edited_yml)
    assert read_done(results, spec) is None


def test_report_only_trains_nothing_and_lists_missing_runs(compare_dir, capsys):
    results, argv = compare_dir
    argv = list(argv)
    argv[argv.index("--seeds") + 1] = "3"  # seed 2 never ran
    assert main(argv + ["--report-only", "--overlay"]) == 0
    assert "start" not in capsys.readouterr().out
    assert not os.path.exists(os.path.join(results, "learning_curves_overlay.png")), "one env: nothing to overlay"
    table = open(os.path.join(results, "summary.md")).read()
    for algo in COMPARE_ALGOS:
        assert f"| {algo} | 2 | missing | n/a |" in table and f"| {algo} | 2 of 3 | 300 |" in table
    assert not any(name.endswith("seed2") for name in os.listdir(os.path.join(results, "runs")))


def test_report_only_reads_a_file_uri_the_same(compare_dir, tmp_path):
    results = str(tmp_path / "results")
    shutil.copytree(compare_dir[0], results)
    argv = list(compare_dir[1])
    argv[argv.index("--results") + 1] = results
    assert main(argv + ["--report-only"]) == 0
    summary = open(os.path.join(results, "summary.md")).read()
    os.remove(os.path.join(results, "summary.md"))
    argv[argv.index("--results") + 1] = f"file://{results}"
    assert main(argv + ["--report-only"]) == 0
    assert open(os.path.join(results, "summary.md")).read() == summary


def test_first_seed_picks_the_seeds_of_a_compare(compare_dir, tmp_path, capsys):
    results = str(tmp_path / "results")
    shutil.copytree(compare_dir[0], results)
    argv = list(compare_dir[1])
    argv[argv.index("--results") + 1] = results
    argv[argv.index("--seeds") + 1] = "2"
    assert main(argv + ["--first-seed", "1", "--report-only"]) == 0  # seeds 1 and 2: 1 finished, 2 never ran
    assert "x 2 seeds from seed 1)" in capsys.readouterr().out
    runs = pd.read_csv(os.path.join(results, "runs.csv"))
    assert sorted(runs["seed"].unique()) == [1, 2]
    assert set(runs.loc[runs["seed"] == 1, "status"]) == {"done"} and set(runs.loc[runs["seed"] == 2, "status"]) == {"missing"}


def test_crashed_run_is_reported_and_others_finish(compare_dir, tmp_path, capsys):
    results = str(tmp_path / "results")
    shutil.copytree(compare_dir[0], results)
    overrides = {"policy_kwargs.net_arch": [32, 32]}  # as in compare_dir, so those runs are reused
    finished = plan_runs([ENV], ["ppo"], [0, 1], steps=300, eval_freq=150, n_eval_episodes=2, overrides=overrides)
    broken = RunSpec(ENV, "ppo", 7, 300, 150, 2, overrides={"not_a_ppo_argument": 1})
    statuses = run_compare(finished + [broken], results, device="cpu", max_failures=0)
    assert [status["status"] for status in statuses] == ["skipped", "skipped", "failed"]
    assert "not_a_ppo_argument" in capsys.readouterr().out  # the error line is shown to the user
    assert not os.path.exists(os.path.join(run_dir(results, broken), "done.json"))
    write_results(statuses, results)
    table = open(os.path.join(results, "summary.md")).read()
    assert "| ppo | 7 | failed | n/a |" in table and "| ppo | 2 of 3 | 300 |" in table
    capsys.readouterr()
    # Read back later (--report-only): the crash is still a failure, not a run that never started.
    statuses = run_compare(finished + [broken], results, report_only=True)
    assert [status["status"] for status in statuses] == ["skipped", "skipped", "failed"]
    out = capsys.readouterr().out
    assert "1 failed, 0 missing" in out and "FAILED" in out and "not_a_ppo_argument" in out
    # the failure belongs to its configuration: the same seed without the bad override never ran
    plain = RunSpec(ENV, "ppo", 7, 300, 150, 2)
    assert run_dir(results, plain) == run_dir(results, broken)
    assert run_compare([plain], results, report_only=True)[0]["status"] == "missing"


def test_a_seeded_run_trains_the_same_as_a_tune_trial_as_in_process(tmp_path):
    """The trainable builds the model as ``train_run`` does: same curve, same final weights."""
    (spec,) = plan_runs([ENV], ["diffcat-sac"], [5], steps=300, eval_freq=100, n_eval_episodes=2, overrides=SAC_SMOKE)
    (status,) = run_compare([spec], str(tmp_path / "tune_results"), device="cpu", checkpoint_freq=100)
    assert status["status"] == "done"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the trial
    try:
        summary = train_run(ENV, "diffcat-sac", seed=5, steps=300, overrides=SAC_SMOKE, device="cpu", eval_freq=100, n_eval_episodes=2,
                            eval_csv=str(tmp_path / "eval.csv"), save_path=str(tmp_path / "model.zip"))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    folder = run_dir(str(tmp_path / "tune_results"), spec)
    through_tune = pd.read_csv(os.path.join(folder, "eval.csv"))
    in_process = pd.read_csv(tmp_path / "eval.csv")
    assert through_tune[["step", "mean_return", "std_return"]].equals(in_process[["step", "mean_return", "std_return"]])
    a, b = _saved_policy(os.path.join(folder, "model.zip")), _saved_policy(summary["model"])
    assert a["_n_updates"] == b["_n_updates"] > 0 and a["weights"].keys() == b["weights"].keys()
    assert all(torch.equal(a["weights"][name], b["weights"][name]) for name in a["weights"])


def _saved_policy(path):
    """The policy weights and update count of a model .zip, read without unpickling anything."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as archive:
        weights = torch.load(io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True)
        data = json.loads(archive.read("data"))
    return {"weights": weights, "_n_updates": data["_n_updates"], "num_timesteps": data["num_timesteps"]}


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _trial_pid(folder, after=0):
    """The process id the latest trial of a run wrote in its log.txt (``... in process N on ...``)."""
    try:
        lines = [line for line in open(os.path.join(folder, "log.txt")) if " in process " in line]
    except OSError:
        return None
    return int(lines[-1].split(" in process ")[1].split()[0]) if len(lines) > after else None


def test_a_trial_whose_worker_is_killed_resumes_from_its_checkpoint(tmp_path, capsys):
    results = str(tmp_path / "results")
    (spec,) = plan_runs([ENV], ["diffcat-sac"], [0], steps=1200, eval_freq=100, n_eval_episodes=2, overrides=SAC_SMOKE)
    folder = run_dir(results, spec)
    killed = {}

    def kill_after_first_checkpoint():
        _wait_for(lambda: checkpoint_folders(results, spec), 120, "a checkpoint")
        killed["pid"] = _wait_for(lambda: _trial_pid(folder), 10, "the trial's process id")
        os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
    killer.start()
    (status,) = run_compare([spec], results, device="cpu", checkpoint_freq=200)
    killer.join(timeout=5)
    assert "pid" in killed and status["status"] == "done"
    resumed_at = status["summary"]["resumed_at"]
    assert len(resumed_at) == 1 and 200 <= resumed_at[0] < 1200, resumed_at
    assert f"from its checkpoint at step {resumed_at[0]} of 1200" in capsys.readouterr().out
    assert _trial_pid(folder, after=1) not in (None, killed["pid"]), "Tune retried it in a new process"
    curve = pd.read_csv(os.path.join(folder, "eval.csv"))
    assert curve["step"].is_unique and curve["step"].is_monotonic_increasing
    assert set(range(0, 1201, 100)) <= set(curve["step"])


def _child_env(temp_root):
    env = {**os.environ, "TMPDIR": temp_root, **RAY_ENVIRONMENT}
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.mark.slow  # about a minute: the killed compare starts a Ray of its own
def test_a_killed_compare_run_again_finishes_without_retraining_what_had_finished(tmp_path):
    """Driver and workers killed mid-run: the same command finishes the rest, from its checkpoint."""
    results = str(tmp_path / "results")
    # One run at a time, in the order given: ppo finishes, then diffcat-sac is killed after its first checkpoint.
    argv = ["compare", "--envs", ENV, "--algos", "ppo", "diffcat-sac", "--seeds", "1", "--steps", "2000", "--eval-freq", "500",
            "--eval-episodes", "2", "--checkpoint-freq", "500", "--jobs", "1", "--device", "cpu", "--results", results,
            "--hyperparams", "policy_kwargs.net_arch=[32, 32]"]  # fmt: skip
    sac, ppo = (RunSpec(ENV, algo, 0, 2000, 500, 2, {"policy_kwargs.net_arch": [32, 32]}) for algo in ("diffcat-sac", "ppo"))
    temp_root = tempfile.mkdtemp(prefix="rdk-")  # the child's local Ray puts its session files here
    child = subprocess.Popen([sys.executable, "-m", "rl_diffcat.cli", *argv], env=_child_env(temp_root), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for(lambda: checkpoint_folders(results, sac), 240, "diffcat-sac's first checkpoint")
        assert read_done(results, ppo) and not read_done(results, sac)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        time.sleep(1)
        _kill_leftovers(temp_root)
        shutil.rmtree(temp_root, ignore_errors=True)
    ppo_done = os.stat(os.path.join(run_dir(results, ppo), "done.json")).st_mtime_ns
    assert main(argv) == 0  # the same command, on this module's Ray
    assert os.stat(os.path.join(run_dir(results, ppo), "done.json")).st_mtime_ns == ppo_done, "ppo was not retrained"
    summary = read_done(results, sac)
    assert summary["resumed_at"] and summary["resumed_at"][0] >= 500
    curve = pd.read_csv(os.path.join(run_dir(results, sac), "eval.csv"))
    assert curve["step"].is_unique and curve["step"].is_monotonic_increasing


def _checkpointed_run(results, spec, n_checkpoints):
    """Train ``spec`` in-process until it has handed ``n_checkpoints`` checkpoints to a fake
    Tune experiment under ``results/tune`` (laid out as Tune lays them out), then stop it."""
    class Stop(Exception):
        pass

    written = []

    def save(model, state):
        folder = os.path.join(results, TUNE_FOLDER, "20000101-000000-1", spec.name, f"checkpoint_{len(written):06d}")
        written.append(checkpoint_module.write_checkpoint(folder, model, state))
        if len(written) == n_checkpoints:
            raise Stop

    folder = run_dir(results, spec)
    with pytest.raises(Stop):
        train_run(spec.env_id, spec.algo, seed=spec.seed, steps=spec.steps, overrides=spec.overrides, device="cpu",
                  eval_freq=spec.eval_freq, n_eval_episodes=spec.n_eval_episodes, eval_csv=os.path.join(folder, "eval.csv"),
                  checkpoint_freq=100, save_checkpoint=save)  # fmt: skip
    return checkpoint_folders(results, spec), [state["step"] for state in written]


def _truncate(path):
    with open(path, "r+b") as file:
        file.truncate(max(1, os.path.getsize(path) // 3))


@pytest.mark.parametrize("damaged", ["state.json", "model", "replay_buffer", "vecnormalize"])
def test_a_damaged_checkpoint_is_named_and_the_run_goes_on_from_the_one_before(damaged, tmp_path):
    results = str(tmp_path / "results")
    overrides = {**SAC_SMOKE, "normalize": True} if damaged == "vecnormalize" else SAC_SMOKE
    (spec,) = plan_runs([ENV], ["diffcat-sac"], [0], steps=400, eval_freq=100, n_eval_episodes=2, overrides=overrides)
    (newest, older), (first, second) = _checkpointed_run(results, spec, 2)
    state = json.load(open(os.path.join(newest, "state.json")))
    path = os.path.join(newest, "state.json" if damaged == "state.json" else state[damaged])
    _truncate(path)
    lines = []
    summary = train_run(ENV, "diffcat-sac", seed=0, steps=400, overrides=overrides, device="cpu", eval_freq=100, n_eval_episodes=2,
                        resume_from=[newest, older], log=lines.append)  # fmt: skip
    assert summary["resumed_at"] == [first]
    assert path in lines[0] and "passing over that checkpoint" in lines[0]
    assert lines[1] == f"going on from the previous readable checkpoint, at step {first}"
    # Both damaged: from scratch, and it says so.
    _truncate(os.path.join(older, "state.json"))
    lines.clear()
    summary = train_run(ENV, "diffcat-sac", seed=0, steps=400, overrides=overrides, device="cpu", eval_freq=100, n_eval_episodes=2,
                        resume_from=[newest, older], log=lines.append)  # fmt: skip
    assert summary["resumed_at"] == [] and lines[-1] == "no readable checkpoint is left: starting over from scratch"


def test_a_truncated_state_file_blocks_neither_the_other_runs_nor_the_report(tmp_path, capsys):
    results = str(tmp_path / "results")
    damaged, other = plan_runs([ENV], ["diffcat-sac"], [0, 1], steps=400, eval_freq=100, n_eval_episodes=2, overrides=SAC_SMOKE)
    (newest, _), (first, _) = _checkpointed_run(results, damaged, 2)
    _truncate(os.path.join(newest, "state.json"))
    # --report-only: the run is in progress at its previous checkpoint, the damaged file is named.
    statuses = run_compare([damaged, other], results, report_only=True)
    assert [status["status"] for status in statuses] == ["in progress", "missing"]
    assert statuses[0]["summary"] == {"checkpoint_step": first}
    assert os.path.join(newest, "state.json") in capsys.readouterr().out
    write_results(statuses, results)
    statuses = run_compare([damaged, other], results, device="cpu", jobs=2)
    assert [status["status"] for status in statuses] == ["done", "done"]
    assert statuses[0]["summary"]["resumed_at"] == [first] and statuses[1]["summary"]["resumed_at"] == []
    out = capsys.readouterr().out
    assert f"cannot read {os.path.join(newest, 'state.json')}" in out
    assert f"going on from the previous readable checkpoint, at step {first}" in out


@pytest.mark.slow  # about a minute: two Ray nodes of its own
def test_a_two_node_cluster_runs_every_trial_on_the_node_with_cpus(tmp_path):
    """A head node offering no CPU and a worker node with 2, both on 127.0.0.1: ``--address``
    joins that cluster and every trial runs on the worker."""
    results = str(tmp_path / "results")
    temp_root = tempfile.mkdtemp(prefix="rdc-")
    script = textwrap.dedent(
        f"""
        import json, sys
        from ray.cluster_utils import Cluster
        cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0, "node_ip_address": "127.0.0.1",
                          "include_dashboard": False, "object_store_memory": 100 * 1024**2}})
        worker = cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1", object_store_memory=100 * 1024**2)
        cluster.wait_for_nodes()
        from rl_diffcat.cli import main
        code = main(["compare", "--address", cluster.address, "--envs", "{ENV}", "--algos", "ppo", "--seeds", "2", "--steps", "200",
                     "--eval-freq", "100", "--eval-episodes", "1", "--jobs", "2", "--device", "cpu", "--results", {results!r}])
        print(json.dumps({{"code": code, "worker": worker.node_id}}))
        cluster.shutdown()
        """
    )
    env = _child_env(temp_root)
    env["RAY_AUTH_MODE"] = env.get("RAY_AUTH_MODE", "token")
    # Ray turns a 127.0.0.1 address into the machine's own IP unless told the cluster is local to it.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=150, start_new_session=True)
    finally:
        time.sleep(1)
        left = _kill_leftovers(temp_root)
        shutil.rmtree(temp_root, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    for seed in (0, 1):
        folder = run_dir(results, RunSpec(ENV, "ppo", seed, 200, 100, 1))
        assert f"(Ray node {report['worker']})" in open(os.path.join(folder, "log.txt")).read()
        assert os.path.exists(os.path.join(folder, "done.json"))
    assert not left, f"the cluster left processes behind: {left}"


def test_a_run_no_node_can_hold_is_refused_before_anything_trains(tmp_path, capsys):
    argv = ["compare", "--algos", "ppo", "--steps", "100", "--results", str(tmp_path), "--cpus-per-run", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no node of the Ray cluster can hold a run of 3 CPUs and 0 GPUs (its nodes offer: 2 CPUs + 0 GPUs)" in err
    assert not os.path.exists(os.path.join(tmp_path, "runs"))


@pytest.mark.parametrize("flag, value, message", [("--cpus-per-run", "0", "--cpus-per-run must be > 0"), ("--gpus-per-run", "-1", "--gpus-per-run must be >= 0")])
def test_resource_flags_are_checked(flag, value, message, capsys):
    assert main(["compare", "--algos", "ppo", flag, value]) == 2
    assert message in capsys.readouterr().err


def test_a_results_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["compare", "--algos", "ppo", "--steps", "100", "--results", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err == f"rl-diffcat compare: error: --results {afile}: {afile} is a file, not a folder\n"
    assert main(["compare", "--algos", "ppo", "--steps", "100", "--results", str(afile / "sub")]) == 2
    assert capsys.readouterr().err == f"rl-diffcat compare: error: --results {afile / 'sub'}: {afile} is a file, not a folder\n"


def test_without_ray_compare_names_the_extra_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    assert main(["compare", "--algos", "ppo", "--steps", "100", "--results", str(tmp_path)]) == 2
    assert "pip install 'rl-diffcat[compare]'" in capsys.readouterr().err
    assert main(["compare", "--algos", "ppo", "--steps", "100", "--results", str(tmp_path), "--report-only"]) == 0, "reports need no Ray"


def test_train_and_evaluate_never_import_ray(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        from rl_diffcat.cli import main
        model = {str(tmp_path / "m.zip")!r}
        assert main(["train", "{ENV}", "--algo", "ppo", "--steps", "64", "--eval-freq", "64", "--eval-episodes", "1", "--device", "cpu",
                     "--no-progress", "--save-path", model, "--tensorboard-log", {str(tmp_path / "tb")!r}, "--hyperparams", "n_steps=64", "n_envs=1"]) == 0
        assert main(["evaluate", "{ENV}", "--algo", "ppo", "--model", model, "--episodes", "1", "--device", "cpu"]) == 0
        print("ray imported:", any(name == "ray" or name.startswith("ray.") for name in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ray imported: False")
