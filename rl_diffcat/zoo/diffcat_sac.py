"""rl-zoo3 hyperparameters of diffcat-sac (``-conf rl_diffcat.zoo.diffcat_sac``), read from our yml file."""

from rl_diffcat.zoo import zoo_hyperparams

hyperparams = zoo_hyperparams("diffcat-sac")
