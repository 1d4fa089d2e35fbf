"""What both categorical SAC agents use: the algorithm skeleton (``categorical_sac``), the actor,
the twin-critic base and the policy base (``policies``), the temperature, replay and rollouts with
action masks, hyperparameter checks, and the compiled / CUDA-graphed update. Each agent's own critic
is in its folder's ``policies.py``."""
