"""rl-zoo3 hyperparameters of discrete-sac (``-conf rl_diffcat.zoo.discrete_sac``), read from our yml file."""

from rl_diffcat.zoo import zoo_hyperparams

hyperparams = zoo_hyperparams("discrete-sac")
