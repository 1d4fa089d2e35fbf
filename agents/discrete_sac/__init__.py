"""DiscreteSAC: the standard discrete soft actor-critic baseline (Christodoulou, 2019)."""

from rl_diffcat.agents.discrete_sac.discrete_sac import DiscreteSAC
from rl_diffcat.agents.discrete_sac.policies import CnnPolicy, DiscreteSACPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CnnPolicy", "DiscreteSAC", "DiscreteSACPolicy", "MlpPolicy", "MultiInputPolicy"]
