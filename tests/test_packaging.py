"""Packaging: agents/ and envs/ install inside rl_diffcat, and nothing bare lands in site-packages."""

import pathlib
import subprocess
import sys
import zipfile

import pytest

import rl_diffcat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def declared_packages() -> set:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; the other tests run on 3.10 too
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def source_packages() -> set:
    """Every folder with an __init__.py, named as it installs."""
    roots = {"rl_diffcat": "rl_diffcat", "agents": "rl_diffcat.agents", "envs": "rl_diffcat.envs"}
    found = set()
    for folder, prefix in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((prefix, *rel)))
    return found


def test_every_source_package_is_declared():
    assert source_packages() == declared_packages()


def test_wheel_holds_no_bare_agents_or_envs(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("rl_diffcat-*.whl")
    assert wheel.name.startswith(f"rl_diffcat-{rl_diffcat.__version__}-")  # the version has one source
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names}
    assert not {"agents", "envs", "tests", "examples"} & top_level
    assert "rl_diffcat/agents/__init__.py" in names and "rl_diffcat/envs/__init__.py" in names


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "rl_diffcat.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
    out = subprocess.run([sys.executable, "-m", "rl_diffcat.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"rl-diffcat {rl_diffcat.__version__}"
