"""Progress lines of a compare's runs: one per new evaluation of a run (reported through Ray
Tune, :mod:`rl_diffcat.compare.engine`), with its speed and the time it still needs, and the
number formats the report shares.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence


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


__all__ = ["format_duration", "format_return", "progress_line", "return_decimals"]
