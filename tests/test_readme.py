"""Every Python example in the README runs as printed, training budgets cut to a few hundred steps.

An API change that breaks a documented example fails here rather than on a user's first try.
"""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
BUDGET = re.compile(r"(\.learn\(|total_timesteps=)(\d[\d_]*)")
STEPS = 300  # enough for SB3's learning_starts and one PPO rollout; learning is tested elsewhere


def readme_examples():
    """``(first line number, code)`` of each fenced ``python`` block of the README."""
    with open(README, encoding="utf-8") as file:
        lines = file.read().splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines, start=1):
        if start is None and line.strip() == "```python":
            start, code = number + 1, []
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(code)))
            start = None
        elif start is not None:
            code.append(line)
    return blocks


def short_budget(code):
    """``code`` with every ``.learn(N`` and ``total_timesteps=N`` above :data:`STEPS` set to it."""
    return BUDGET.sub(lambda match: match.group(1) + str(min(int(match.group(2).replace("_", "")), STEPS)), code)


def test_the_readme_has_examples_and_each_training_budget_is_cut():
    examples = readme_examples()
    assert len(examples) >= 5, "the README's Python examples were not found"
    training = [code for _, code in examples if "learn(" in code]
    assert training, "some examples train"
    for code in training:
        assert code.count("learn(") == len(BUDGET.findall(code)), f"a budget this test cannot cut:\n{code}"
        assert all(int(n.replace("_", "")) <= STEPS for _, n in BUDGET.findall(short_budget(code)))


@pytest.mark.parametrize("line, code", [pytest.param(line, code, id=f"line{line}") for line, code in readme_examples()])
def test_readme_example_runs(line, code, tmp_path):
    if "sb3_contrib" in code:
        pytest.importorskip("sb3_contrib")
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", short_budget(code)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"README line {line}:\n{proc.stderr[-3000:]}"
