"""Discrete-action soft actor-critic agents, shaped like SB3 algorithms.

* :class:`DiffCatSAC`: pathwise SAC through a discrete sampler (ReDGE by default), joint critic
  ``Q(s, one_hot(a))``; ``Discrete``, ``MultiDiscrete`` and ``MultiBinary`` actions.
* :class:`DiscreteSAC`: the standard discrete SAC baseline with ``Q(s, .)`` critics; ``Discrete`` only.
"""

from rl_diffcat.agents.diffcat_sac import DiffCatSAC
from rl_diffcat.agents.discrete_sac import DiscreteSAC

__all__ = ["DiffCatSAC", "DiscreteSAC"]
