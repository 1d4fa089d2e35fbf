"""The documentation's examples work: every Python example in the README runs as printed (training
budgets cut to a few hundred steps), and every ``rl-diffcat`` command in the README and
BENCHMARKS.md parses with today's command line.

An API change that breaks a documented example fails here rather than on a user's first try.
"""

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BUDGET = re.compile(r"(\.learn\(|total_timesteps=)(\d[\d_]*)(?![\w.])")  # 1e6 or 5.0e4: not cut, so the check fails
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


def documented_commands(name):
    """``(line, arguments)`` of each ``rl-diffcat`` command in ``name``: code blocks (fenced or
    indented, ``\\``-continued lines joined) and inline code spans. Placeholders (``...``,
    ``<name>``, ``[--flag]``) and a bare subcommand named in prose are left out."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as file:
        text = file.read()
    found = []
    for match in re.finditer(r"`rl-diffcat ([^`]+)`|^(?:    |)rl-diffcat ((?:[^\n\\]|\\\n)+)", text, flags=re.M):
        command = re.sub(r"\\\n\s*", " ", match.group(1) or match.group(2)).split("#")[0].strip()
        line = text.count("\n", 0, match.start()) + 1
        if any(mark in command for mark in ("...", "<", "[")) or command in ("train", "compare", "evaluate"):
            continue
        found.append((line, shlex.split(command)))
    return found


@pytest.mark.parametrize("name", ["README.md", "BENCHMARKS.md"])
def test_documented_commands_parse(name):
    from rl_diffcat.cli import build_parser

    commands = documented_commands(name)
    assert len(commands) >= 10, f"the rl-diffcat commands of {name} were not found"
    for line, arguments in commands:
        try:
            build_parser().parse_args(arguments)
        except SystemExit:
            pytest.fail(f"{name} line {line}: rl-diffcat {' '.join(arguments)} does not parse")
