"""Progress lines of a compare's runs in flight: speed and time left, from the evaluations they report."""

import pytest

from rl_diffcat.benchmark.progress import format_duration, progress_line


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (44.6, "45s"), (750, "12m30s"), (25_320, "7h02m"), (-3, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_progress_line_uses_the_speed_of_the_last_interval():
    rows = [
        {"step": 0.0, "mean_return": -130.0, "wall_clock": 4.0},
        {"step": 10_000.0, "mean_return": -120.0, "wall_clock": 10.0},  # random steps before learning starts: fast
        {"step": 20_000.0, "mean_return": 512.25, "wall_clock": 1010.0},  # 10 env-steps/s once learning
    ]
    assert progress_line("run", rows, 300_000) == (
        "run: step 20000/300000 (7%), eval 512.2, 10.0 env-steps/s, about 7h46m left"
    )
    assert progress_line("run", rows[:1], 300_000) == "run: step 0/300000 (0%), eval -130.0"
    # The interval 0 -> 10k was random steps: its speed says nothing of the time left.
    assert progress_line("run", rows[:2], 300_000, warmup_steps=10_000) == (
        "run: step 10000/300000 (3%), eval -120.0, 1666.7 env-steps/s"
        " (this interval holds random steps from before learning started at 10000: no time estimate yet)"
    )
    assert progress_line("run", rows, 300_000, warmup_steps=10_000).endswith("10.0 env-steps/s, about 7h46m left")


def test_returns_get_the_decimals_their_size_needs():
    from rl_diffcat.benchmark.progress import format_return, return_decimals

    assert [format_return(v) for v in (7043.7, -130.0, 2.5, -0.14583)] == ["7043.7", "-130.0", "2.500", "-0.1458"]
    assert return_decimals([-0.2, float("nan"), None, -0.9]) == 4 and return_decimals([]) == 1
