"""DiffCatSAC: SAC with pathwise gradients through the ReDGE diffusion sampler."""

from rl_diffcat.agents.diffcat_sac.diffcat_sac import DiffCatSAC
from rl_diffcat.agents.diffcat_sac.policies import CnnPolicy, DiffCatSACPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CnnPolicy", "DiffCatSAC", "DiffCatSACPolicy", "MlpPolicy", "MultiInputPolicy"]
