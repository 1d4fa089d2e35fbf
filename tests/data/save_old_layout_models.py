"""Writes the model files that ``tests/test_agents_save_load.py::test_models_saved_before_the_agents_moved_still_load``
loads: one DiffCatSAC (MultiDiscrete, action masks) and one DiscreteSAC (Discrete, action masks), tiny
networks, with their replay buffers and the deterministic actions they chose on fixed observations.

Run once, at the commit before the agents' classes moved (issue #37), from the repository root:

    python tests/data/save_old_layout_models.py

Do not run it again: the point of the files is that an older layout wrote them.
"""

import json
import pathlib
import sys

import numpy as np
import torch as th

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from rl_diffcat.agents import DiffCatSAC, DiscreteSAC  # noqa: E402
from test_agents_action_masks import PickTheMarked  # noqa: E402

SETTINGS = dict(learning_starts=20, batch_size=8, buffer_size=64, policy_kwargs=dict(net_arch=[8]), seed=0, device="cpu")
MODELS = {
    "diffcat_sac_masked": (DiffCatSAC, (3, 4)),
    "discrete_sac_masked": (DiscreteSAC, (5,)),
}


def main() -> None:
    th.set_num_threads(1)
    expected = {}
    for name, (algo, dims) in MODELS.items():
        env = PickTheMarked(dims)
        model = algo("MlpPolicy", env, **SETTINGS).learn(40)
        assert model.use_action_masks
        model.save(HERE / f"{name}.zip")
        model.save_replay_buffer(HERE / f"{name}_buffer")
        obs, masks = [], []
        env.reset(seed=1)
        for _ in range(6):
            obs.append(env._new_state())
            masks.append(env.action_masks())
        obs, masks = np.stack(obs), np.stack(masks)
        actions, _ = model.predict(obs, deterministic=True, action_masks=masks)
        expected[name] = dict(
            observations=obs.tolist(),
            action_masks=masks.tolist(),
            actions=actions.tolist(),
            ent_coef=float(model.current_ent_coef),
            n_updates=int(model._n_updates),
            buffer_size=int(model.replay_buffer.size()),
            policy_class=f"{type(model.policy).__module__}.{type(model.policy).__qualname__}",
            replay_buffer_class=f"{type(model.replay_buffer).__module__}.{type(model.replay_buffer).__qualname__}",
        )
    (HERE / "old_layout_models.json").write_text(json.dumps(expected) + "\n")


if __name__ == "__main__":
    main()
