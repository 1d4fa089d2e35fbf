"""DiscreteSAC policies: categorical actor + critics with one output per action ``Q_i(s, .)``."""

from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN

from rl_diffcat.agents.common.policies import ActionValueCritic, CategoricalSACPolicy


class DiscreteSACPolicy(CategoricalSACPolicy):
    """Actor ``pi(.|s)``, twin critics ``Q_i(s, .)`` with one output per action, and their targets.
    Vector observations. Arguments as in :class:`rl_diffcat.agents.common.policies.CategoricalSACPolicy`."""

    critic_class = ActionValueCritic


MlpPolicy = DiscreteSACPolicy


class CnnPolicy(DiscreteSACPolicy):
    """:class:`DiscreteSACPolicy` with SB3's NatureCNN for image observations."""

    default_features_extractor_class = NatureCNN


class MultiInputPolicy(DiscreteSACPolicy):
    """:class:`DiscreteSACPolicy` with SB3's CombinedExtractor for ``Dict`` observations."""

    default_features_extractor_class = CombinedExtractor
