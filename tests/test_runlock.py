"""The per-run lock of a compare: held across processes, inherited by the training process, and
released by the kernel when its holders die (so never left stale)."""

import os
import signal
import subprocess
import sys

import pytest

from rl_diffcat.benchmark import runlock
from rl_diffcat.benchmark.runlock import RunLock, held_elsewhere, read_holder

pytestmark = pytest.mark.skipif(runlock.fcntl is None, reason="runs are locked only where fcntl exists")

HOLD = (
    "import sys, time\n"
    "from rl_diffcat.benchmark.runlock import RunLock\n"
    "lock = RunLock.acquire(sys.argv[1])\n"
    "print('locked' if lock else 'held', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_second_acquire_is_refused_and_names_the_holder(tmp_path):
    folder = str(tmp_path)
    with RunLock.acquire(folder) as first:
        assert first is not None
        first.describe(train_pid=12345)
        assert RunLock.acquire(folder) is None
        holder = read_holder(folder)
        assert f"compare pid {os.getpid()}" in holder and "training pid 12345" in holder
    again = RunLock.acquire(folder)
    assert again is not None, "released on exit"
    again.release()
    assert open(tmp_path / runlock.LOCK_NAME).read() == "", "a released lock names no holder"


def test_held_elsewhere_looks_without_taking_the_lock(tmp_path):
    folder = str(tmp_path)
    assert not held_elsewhere(folder)  # no lock file yet
    with RunLock.acquire(folder) as lock:
        lock.describe(train_pid=12345)
        assert held_elsewhere(folder)
        assert "training pid 12345" in read_holder(folder)  # looking wrote nothing
    assert not held_elsewhere(folder)


def test_report_only_shows_a_run_another_compare_trains_as_in_progress(tmp_path):
    from rl_diffcat.benchmark.runner import RunSpec, run_compare, run_dir

    spec = RunSpec("CartPole-v1", "ppo", 0, steps=1000, eval_freq=500, n_eval_episodes=2)
    folder = run_dir(str(tmp_path), spec)
    os.makedirs(folder)
    with open(os.path.join(folder, "eval.csv"), "w") as file:  # evaluated once, no checkpoint yet
        file.write("env,algo,seed,step,mean_return,std_return,wall_clock\nCartPole-v1,ppo,0,0,9.0,0.0,0.1\n")
    with RunLock.acquire(folder):
        assert run_compare([spec], str(tmp_path), report_only=True)[0]["status"] == "in progress"
    assert run_compare([spec], str(tmp_path), report_only=True)[0]["status"] == "missing"


def test_the_lock_of_a_killed_holder_is_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert RunLock.acquire(str(tmp_path)) is None
        assert f"compare pid {holder.pid}" in read_holder(str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = RunLock.acquire(str(tmp_path))
    assert lock is not None, "kill -9 leaves no stale lock"
    lock.release()


def test_a_training_process_keeps_the_run_locked_after_its_compare_lets_go(tmp_path):
    lock = RunLock.acquire(str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=lock.inheritable_fds)
    try:
        lock.release()  # as when the compare is gone but its run still trains
        assert RunLock.acquire(str(tmp_path)) is None
    finally:
        child.kill()
        child.wait()
    free = RunLock.acquire(str(tmp_path))
    assert free is not None
    free.release()


def _refuse_flock(fd, operation):
    raise OSError(37, "No locks available")  # ENOLCK, as on some network mounts


def test_a_filesystem_without_flock_runs_unlocked(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock.fcntl, "flock", _refuse_flock)
    lock = RunLock.acquire(str(tmp_path))
    assert lock is not None and not lock.locked and lock.inheritable_fds == ()
    lock.release()


def test_compare_says_when_it_cannot_lock_its_runs(tmp_path, monkeypatch):
    from rl_diffcat.benchmark import runner

    monkeypatch.setattr(runlock.fcntl, "flock", _refuse_flock)
    (spec,) = runner.plan_runs(["CartPole-v1"], ["ppo"], [0], steps=10, eval_freq=10, n_eval_episodes=1)
    monkeypatch.setattr(runner, "train_command", lambda *args: [sys.executable, "-c", "pass"])  # trains nothing
    lines = []
    (status,) = runner.run_compare([spec], str(tmp_path), log=lines.append, progress_poll_s=0)
    assert status["status"] == "failed", "no done.json was written"
    assert sum(line.startswith("note: no flock here") for line in lines) == 1
