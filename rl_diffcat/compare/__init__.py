"""``rl-diffcat compare`` on Ray Tune: every (env, algo, seed) run is a Tune trial.

* :mod:`~rl_diffcat.compare.grid`: the runs of a compare (env, algo, seed), their folders and which have finished;
* :mod:`~rl_diffcat.compare.trainable`: one run as a Tune function trainable (build, learn, evaluate, checkpoint);
* :mod:`~rl_diffcat.compare.engine`: Ray (a local instance, or a cluster) and the Tune experiment
  that trains the unfinished runs, with one progress line per evaluation;
* the report, statistics and plots stay in :mod:`rl_diffcat.benchmark` (``report``, ``stats``, ``plots``).

Nothing here imports Ray at module level: ``--report-only`` and ``train`` work without it.
"""
