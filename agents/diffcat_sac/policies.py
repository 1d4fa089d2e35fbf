"""DiffCatSAC policies: categorical actor + joint critics ``Q_i(s, one_hot(a))``."""

from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN

from rl_diffcat.agents.common.policies import CategoricalSACPolicy, OneHotCritic


class DiffCatSACPolicy(CategoricalSACPolicy):
    """Actor ``pi(.|s)`` (one categorical per factor), twin joint critics ``Q_i(s, a)`` on the
    concatenated one-hot action, and their Polyak-averaged targets. Vector observations.
    Arguments as in :class:`rl_diffcat.agents.common.policies.CategoricalSACPolicy`."""

    critic_class = OneHotCritic


MlpPolicy = DiffCatSACPolicy


class CnnPolicy(DiffCatSACPolicy):
    """:class:`DiffCatSACPolicy` with SB3's NatureCNN for image observations."""

    default_features_extractor_class = NatureCNN


class MultiInputPolicy(DiffCatSACPolicy):
    """:class:`DiffCatSACPolicy` with SB3's CombinedExtractor for ``Dict`` observations."""

    default_features_extractor_class = CombinedExtractor
