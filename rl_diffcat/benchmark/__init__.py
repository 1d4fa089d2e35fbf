"""Multi-seed comparison machinery behind ``rl-diffcat compare``.

* :mod:`~rl_diffcat.benchmark.algos`: the algorithm registry, hyperparameter files, model building;
* :mod:`~rl_diffcat.benchmark.callbacks`: the evaluation callback that writes learning curves;
* :mod:`~rl_diffcat.benchmark.runner`: one run in-process, or a grid of runs in subprocesses with resume;
* :mod:`~rl_diffcat.benchmark.checkpoint`: mid-run checkpoints an interrupted run goes on from;
* :mod:`~rl_diffcat.benchmark.evaluation`: playing a saved model (``rl-diffcat evaluate``);
* :mod:`~rl_diffcat.benchmark.stats`: IQM and stratified-bootstrap confidence intervals;
* :mod:`~rl_diffcat.benchmark.plots` and :mod:`~rl_diffcat.benchmark.report`: PNG, CSV and Markdown outputs;
* :mod:`~rl_diffcat.benchmark.presets`: the named compare configurations (``--preset quick``).

Only the numpy-only statistics are imported here; the rest imports stable-baselines3.
"""

from rl_diffcat.benchmark.stats import bootstrap_ci, iqm, stratified_bootstrap

__all__ = ["bootstrap_ci", "iqm", "stratified_bootstrap"]
