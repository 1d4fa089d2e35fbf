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


def readme_commands() -> list:
    """The bash blocks that open the README: the install+main-job command, then the test command."""
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [block.split("```")[0].strip() for block in blocks]


def test_ci_runs_the_readme_test_command_in_a_venv_it_creates():
    """CI proves a new user's machine works only if it runs the README's own command, in a
    virtual environment it made itself (a package installed by hand on the CI machine once hid
    rl-zoo3's missing ``requests``)."""
    main_job, test_command = readme_commands()
    assert "rl-diffcat compare" in main_job and "pytest" in test_command
    assert 'torch==2.13.0' in main_job and 'torch==2.13.0' in test_command  # the CPU build on disk
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [line.strip() for line in ci.splitlines()]
    assert test_command in lines
    venv_line = next(i for i, line in enumerate(lines) if "-m venv" in line)
    activate_line = next(i for i, line in enumerate(lines) if line.startswith("source") and "bin/activate" in line)
    assert venv_line < activate_line < lines.index(test_command)


def test_rl_zoo3_enjoy_imports():
    """``python -m rl_diffcat.zoo enjoy`` imports rl-zoo3's enjoy, which needs ``requests``
    (the ``zoo`` extra installs it)."""
    pytest.importorskip("rl_zoo3")
    import rl_zoo3.enjoy  # noqa: F401


def library_import_graph() -> dict:
    """``{module: modules of the library it imports}``, read from the source with ``ast``: every
    ``import`` statement counts, those inside functions too (a lazy import does not make a cycle
    go away). ``from p import name`` points at the submodule ``p.name`` when there is one, else at
    ``p``; the implicit import of a module's parent packages is not an edge, nor an import under
    ``if TYPE_CHECKING:`` (it never runs)."""
    import ast

    def runtime_nodes(node):
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                yield from (n for c in child.orelse for n in runtime_nodes(c))
            else:
                yield from runtime_nodes(child)

    roots = {"rl_diffcat": "rl_diffcat", "agents": "rl_diffcat.agents", "envs": "rl_diffcat.envs"}
    files = {}
    for folder, prefix in roots.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join((prefix, *parts))] = path
    graph = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names)
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def test_library_modules_import_without_a_cycle():
    """Dependencies point one way (issue #37): no chain of imports among the library's modules
    (rl_diffcat, agents, envs) leads back to where it started."""
    graph = library_import_graph()
    assert {"rl_diffcat.samplers", "rl_diffcat.samplers.chain", "rl_diffcat.validation"} <= set(graph)
    state, stack = {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    # The samplers' leaves import nothing of the sampler package above them.
    for leaf in ("rl_diffcat.samplers.chain", "rl_diffcat.samplers.settings", "rl_diffcat.validation"):
        assert not {t for t in graph[leaf] if t.startswith("rl_diffcat.samplers")} - {
            "rl_diffcat.samplers.chain", "rl_diffcat.samplers.settings"
        }, (leaf, graph[leaf])


def test_project_files_every_library_ships():
    """LICENSE says what pyproject says (MIT); CITATION.cff cites the library and the ReDGE paper."""
    yaml = pytest.importorskip("yaml")
    tomllib = pytest.importorskip("tomllib")
    license_text = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert (ROOT / "LICENSE").read_text().startswith(f"{license_text} License")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["version"] == rl_diffcat.__version__
    assert {"message", "title", "authors", "license"} <= set(citation)
    assert any("2601.00781" in str(reference) for reference in citation["references"])
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{rl_diffcat.__version__}]" in changelog
