"""Tutorial 1: train DiffCatSAC on a gymnasium task, evaluate it, save it and load it back.

    python examples/tutorials/train_diffcat_sac.py              # 20k steps on CartPole-v1 (a few minutes on a CPU)
    python examples/tutorials/train_diffcat_sac.py --steps 500  # a smoke run

DiffCatSAC is soft actor-critic whose actor gradient flows *through* the sampled discrete action
(ReDGE's pathwise estimator) into a critic ``Q(s, one_hot(a))``. The settings below are the tuned
CartPole entry of ``rl_diffcat/hyperparams/diffcat_sac.yml`` (the class keeps SB3's defaults:
256x256 nets and a 1M-transition buffer, which a small task does not need).
"""

import argparse

from stable_baselines3.common.evaluation import evaluate_policy

from rl_diffcat.agents import DiffCatSAC


def main(steps: int, path: str) -> float:
    model = DiffCatSAC(
        "MlpPolicy",
        "CartPole-v1",
        learning_rate=1e-3,
        batch_size=128,
        tau=0.01,
        buffer_size=100_000,
        twin_q="mean",
        policy_kwargs=dict(net_arch=[64, 64]),
        sampler="redge",  # the pathwise estimator; gumbel_softmax, straight_through, ... also work
        sampler_kwargs=dict(n_steps=5, t_1=0.5),  # ReDGE's defaults: its hard samples follow pi
        seed=0,
    )
    model.learn(total_timesteps=steps, progress_bar=steps >= 5_000)
    mean_return, std_return = evaluate_policy(model, model.get_env(), n_eval_episodes=5, deterministic=True)
    print(f"after {steps} steps: return {mean_return:.1f} +/- {std_return:.1f} over 5 greedy episodes")

    model.save(path)  # weights, optimizers, temperature and settings; the replay buffer apart:
    model = DiffCatSAC.load(path)  # loading never runs code from the file (README: Loading files)
    return mean_return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--save-path", default="diffcat_sac_cartpole.zip")
    args = parser.parse_args()
    main(args.steps, args.save_path)
