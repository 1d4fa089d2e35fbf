"""Our agents inside rl-zoo3 (``pip install 'rl-diffcat[zoo]'``).

rl-zoo3 picks algorithms from its ``ALGOS`` table when it parses ``--algo``, so they must be
registered in the same process before its command line is read. This module does that and then
hands over to rl-zoo3's own ``train``, ``enjoy`` or ``record_video``::

    python -m rl_diffcat.zoo train --algo diffcat_sac --env CartPole-v1 -f logs/
    python -m rl_diffcat.zoo enjoy --algo diffcat_sac --env CartPole-v1 -f logs/ --no-render -n 1000
    python -m rl_diffcat.zoo record_video --algo diffcat_sac --env CartPole-v1 -f logs/ -n 500 -o videos/

Every rl-zoo3 flag works. Unless ``-conf`` is given, the hyperparameters are ours
(``rl_diffcat/hyperparams/*.yml``, exposed as the modules ``rl_diffcat.zoo.<algo>``), and the
``rl_diffcat/`` env ids resolve: ``--gym-packages rl_diffcat.envs`` is added for ``train`` and
``enjoy``; ``record_video``, which has no such flag, gets them registered in-process.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from typing import Any, Dict, List, Optional

from rl_diffcat.benchmark.algos import ALGOS as CLI_ALGOS, _read_yaml, load_hyperparams, resolve_policy_kwargs
from rl_diffcat.zoo.tuning import register_search_spaces

# rl-zoo3 name -> our CLI name (rl-zoo3 spells algorithms with underscores).
ZOO_ALGOS = {"diffcat_sac": "diffcat-sac", "discrete_sac": "discrete-sac", "ppo_diffcat": "ppo-diffcat"}


def register() -> None:
    """Add ``diffcat_sac``, ``discrete_sac`` and ``ppo_diffcat`` to rl-zoo3's ``ALGOS``, and their
    search spaces for ``-optimize`` (:mod:`rl_diffcat.zoo.tuning`)."""
    from rl_zoo3 import utils

    for zoo_name, cli_name in ZOO_ALGOS.items():
        utils.ALGOS[zoo_name] = CLI_ALGOS[cli_name].load_class()
    register_search_spaces()


def zoo_hyperparams(cli_name: str) -> Dict[str, Dict[str, Any]]:
    """Our hyperparameter file for ``cli_name`` in rl-zoo3's layout: one complete entry per env id
    (rl-zoo3 does not merge an env entry over ``default``, so we do), plus ``default``.
    ``lin_<x>`` schedules are rl-zoo3's own spelling; policy class names become dotted paths, and
    activation and features-extractor names the classes."""
    table = _read_yaml(CLI_ALGOS[cli_name].hyperparams_file)
    entries = {}
    for env_id in table:
        params = load_hyperparams(cli_name, env_id) if env_id != "default" else dict(table["default"])
        policy = params.get("policy", "MlpPolicy")
        algo_class = CLI_ALGOS[cli_name].load_class()
        if policy not in getattr(algo_class, "policy_aliases", {}):
            params["policy"] = f"rl_diffcat.sb3.{policy}"
        if params.get("policy_kwargs"):  # rl-zoo3 takes a policy_kwargs dict from a module as is
            params["policy_kwargs"] = resolve_policy_kwargs(params["policy_kwargs"])
        entries[env_id] = params
    return entries


USAGE = "usage: python -m rl_diffcat.zoo {train,enjoy,record_video} --algo diffcat_sac|discrete_sac|ppo_diffcat [rl-zoo3 flags]"


def _given_flags(rest: List[str]) -> argparse.Namespace:
    """The rl-zoo3 flags this wrapper fills in when absent, read as rl-zoo3 reads them
    (``--algo NAME`` or ``--algo=NAME``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("--gym-packages", nargs="+", default=None)
    return parser.parse_known_args(rest)[0]


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
        return
    if not argv or argv[0] not in ("train", "enjoy", "record_video"):
        raise SystemExit(USAGE)
    command, rest = argv[0], argv[1:]
    register()
    given = _given_flags(rest)
    if command == "record_video":  # it takes no --gym-packages: register our env ids here instead
        import rl_diffcat.envs  # noqa: F401
    elif given.gym_packages is None:
        rest += ["--gym-packages", "rl_diffcat.envs"]
    if command == "train" and given.conf_file is None and given.algo in ZOO_ALGOS:
        rest += ["--conf-file", f"rl_diffcat.zoo.{given.algo}"]
    sys.argv = [f"rl_zoo3.{command}", *rest]
    if command == "train":
        from rl_zoo3.train import train

        train()
    elif command == "enjoy":
        from rl_zoo3.enjoy import enjoy

        enjoy()
    else:  # rl-zoo3 runs record_video only as a script
        runpy.run_module("rl_zoo3.record_video", run_name="__main__")
