"""rl-zoo3 hyperparameters of ppo-diffcat (``-conf rl_diffcat.zoo.ppo_diffcat``), read from our yml file."""

from rl_diffcat.zoo import zoo_hyperparams

hyperparams = zoo_hyperparams("ppo-diffcat")
