"""Progress of the runs a compare has in flight: one line per new evaluation of a run, with its
speed and the time it still needs, read from the ``eval.csv`` its process appends to.

A compare's runs write to their own log files, so without this a multi-hour compare (HalfCheetah
at ~10 env-steps/s) says nothing between a run's start and its end.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence


def return_decimals(returns: Sequence[float]) -> int:
    """Decimals that show returns of this size: 1 from a largest magnitude of 10 up (CartPole's
    500, HalfCheetah's 7000), 3 from 1 up, 4 below (a one-step task with rewards in [-1, 0])."""
    finite = [abs(value) for value in returns if value is not None and not math.isnan(value)]
    scale = max(finite, default=10.0)
    return 1 if scale >= 10 else 3 if scale >= 1 else 4


def format_return(value: float) -> str:
    """One return, with :func:`return_decimals` decimals."""
    return f"{value:.{return_decimals([value])}f}"


def format_duration(seconds: float) -> str:
    """``45s``, ``12m30s``, ``7h02m``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def read_eval_rows(path: str) -> List[Dict[str, float]]:
    """The ``step``, ``mean_return`` and ``wall_clock`` of each row of an ``eval.csv`` written so far
    (a row still being written is skipped). :return: [] if the file does not exist yet."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            try:
                rows.append({key: float(row[key]) for key in ("step", "mean_return", "wall_clock")})
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def progress_line(name: str, rows: List[Dict[str, float]], total_steps: int, warmup_steps: int = 0) -> str:
    """``name: step 40000/300000 (13%), eval 1234.5, 10.2 env-steps/s, about 7h02m left``: the speed
    over the last evaluation interval (evaluations included), so the estimate follows a run whose
    speed changes (learning starts, a slower machine after a resume).

    :param warmup_steps: an off-policy agent's ``learning_starts``: its random steps before then
        run without gradient steps, up to 100x faster, so an interval that began before them gives
        the speed but no time left (it would say minutes for a run of hours).
    """
    last = rows[-1]
    step = int(last["step"])
    line = f"{name}: step {step}/{total_steps} ({100 * step / max(total_steps, 1):.0f}%), eval {format_return(last['mean_return'])}"
    if len(rows) >= 2:
        steps = last["step"] - rows[-2]["step"]
        seconds = last["wall_clock"] - rows[-2]["wall_clock"]
        if steps > 0 and seconds > 0:
            rate = steps / seconds
            line += f", {rate:.1f} env-steps/s"
            if rows[-2]["step"] < warmup_steps:
                line += f" (this interval holds random steps from before learning started at {warmup_steps}: no time estimate yet)"
            else:
                line += f", about {format_duration(max(total_steps - step, 0) / rate)} left"
    return line


def wait_reporting_progress(
    process: subprocess.Popen,
    eval_csv: str,
    name: str,
    total_steps: int,
    log: Callable[[str], None],
    poll_s: float = 10.0,
    warmup_steps: int = 0,
) -> int:
    """Wait for ``process``, logging :func:`progress_line` each time its ``eval.csv`` gains a row.

    :return: the process' exit code.
    """
    seen = len(read_eval_rows(eval_csv))  # rows of an earlier segment of a resumed run are old news
    last_mtime: Optional[float] = None

    def report_new_rows() -> None:
        nonlocal seen, last_mtime
        mtime = os.path.getmtime(eval_csv) if os.path.exists(eval_csv) else None
        if mtime == last_mtime:
            return
        last_mtime = mtime
        rows = read_eval_rows(eval_csv)
        if len(rows) > seen and rows[-1]["step"] > 0:
            log(progress_line(name, rows, total_steps, warmup_steps))
        seen = len(rows)  # also when it shrank: a resumed run rewrites its curve up to the checkpoint

    while True:
        try:
            returncode = process.wait(timeout=poll_s)  # returns as soon as the run ends
        except subprocess.TimeoutExpired:
            report_new_rows()
            continue
        return returncode


__all__ = ["format_duration", "format_return", "progress_line", "read_eval_rows", "return_decimals", "wait_reporting_progress"]
