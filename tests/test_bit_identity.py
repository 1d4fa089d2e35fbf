"""Refactors change no bit of training: seeded CartPole runs of each agent (and of SB3's PPO with
the drop-in policy) end with the parameters whose SHA-256 was recorded before the refactor.

The recorded digests hold for one torch build and CPU instruction set (matrix kernels differ in
their last bits across them); on another platform the test skips and says so. After a change that
is meant to alter training, record anew, and say why in the commit:

    python tests/test_bit_identity.py --record
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from typing import Callable, Dict

import pytest
import torch as th
from stable_baselines3 import PPO

from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.sb3 import DiffCatActorCriticPolicy

RECORD = pathlib.Path(__file__).with_name("bit_identity.json")
SAC_SETTINGS = dict(learning_starts=100, batch_size=32, buffer_size=1000, policy_kwargs=dict(net_arch=[32, 32]), seed=0, device="cpu")


def platform_key() -> str:
    """The torch build and the CPU instruction set its kernels were chosen for."""
    return f"torch {th.__version__}, {th.backends.cpu.get_cpu_capability()}"


def digest(model) -> str:
    """SHA-256 of every tensor of the policy's state dict (targets included) and the temperature."""
    sha = hashlib.sha256()
    state = model.policy.state_dict()
    for name in sorted(state):
        sha.update(name.encode())
        sha.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    log_alpha = getattr(model, "log_ent_coef", None)
    if log_alpha is not None:
        sha.update(log_alpha.detach().cpu().numpy().tobytes())
    return sha.hexdigest()


RUNS: Dict[str, Callable[[], object]] = {
    "DiffCatSAC": lambda: DiffCatSAC("MlpPolicy", "CartPole-v1", **SAC_SETTINGS).learn(400),
    "DiffCatSAC[autograd, gumbel_softmax]": lambda: DiffCatSAC(
        "MlpPolicy", "CartPole-v1", q_gradient="autograd", sampler="gumbel_softmax", **SAC_SETTINGS
    ).learn(400),
    "DiscreteSAC": lambda: DiscreteSAC("MlpPolicy", "CartPole-v1", **SAC_SETTINGS).learn(400),
    "PPO[DiffCatActorCriticPolicy]": lambda: PPO(
        DiffCatActorCriticPolicy, "CartPole-v1", n_steps=128, batch_size=32, n_epochs=2, seed=0, device="cpu"
    ).learn(256),
}


@pytest.mark.parametrize("run", list(RUNS))
def test_seeded_training_is_bit_identical_to_the_record(run):
    recorded = json.loads(RECORD.read_text())
    if platform_key() not in recorded:
        pytest.skip(f"digests recorded for {sorted(recorded)}, not for {platform_key()}")
    th.set_num_threads(1)
    assert digest(RUNS[run]()) == recorded[platform_key()][run]


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    th.set_num_threads(1)
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    recorded[platform_key()] = {name: digest(make()) for name, make in RUNS.items()}
    RECORD.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    print(f"recorded {platform_key()}: {recorded[platform_key()]}")
