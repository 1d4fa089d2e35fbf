"""``compile_update`` and ``cuda_graph``: the wiring around the categorical SAC gradient step.

The step itself is :meth:`~rl_diffcat.agents.common.categorical_sac.CategoricalSAC._gradient_step`,
written eagerly. This mixin wraps it from outside:

* ``compile_update``: the two losses it calls (``_critic_loss_fn``, ``_actor_loss_fn``) are the
  agent's ``critic_loss``/``actor_loss`` through ``torch.compile``; the optimizer steps stay eager.
  Under the compile modes that CUDA-graph each loss, a replay recycles the previous outputs, so
  the logged values are copied out (:meth:`_keep`).
* ``cuda_graph``: the whole step is captured as one CUDA graph and replayed on every minibatch
  (:class:`~rl_diffcat.agents.common.cuda_graph.GraphedStep`, ``_graphed_step``); the optimizers
  are made capturable, and their learning rates are written into tensors the graph reads.

The compiled functions and graphs are rebuilt on load and after ``set_parameters``, never saved.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch as th

from rl_diffcat.agents.common.cuda_graph import GraphedStep, graph_supported, make_capturable, release_capturable, set_learning_rate


class CompiledUpdateMixin:
    """Sets up the compiled losses and the graphed step of an agent with ``compile_update``,
    ``compile_kwargs``, ``cuda_graph``, ``optimizers``, ``critic_loss``, ``actor_loss`` and
    ``_gradient_step`` (mixed in before SB3's ``OffPolicyAlgorithm``)."""

    compile_update: bool
    compile_kwargs: Dict[str, Any]
    cuda_graph: bool
    device: th.device
    optimizers: List[th.optim.Optimizer]
    critic_loss: Callable[..., Tuple[th.Tensor, th.Tensor]]
    actor_loss: Callable[..., Tuple[th.Tensor, th.Tensor]]
    _gradient_step: Callable[..., Dict[str, th.Tensor]]

    #: attributes rebuilt by :meth:`_setup_compiled_update`, left out of saved files
    compiled_attributes = ["_critic_loss_fn", "_actor_loss_fn", "_graphed_step"]

    def _setup_compiled_update(self) -> None:
        """The loss functions the gradient step calls and the graphed step; called at the end of ``_setup_model``."""
        self._setup_loss_functions()
        self._setup_cuda_graph()

    def _setup_loss_functions(self) -> None:
        """The agent's own loss methods, or their ``torch.compile``d versions with ``compile_update``."""
        self._critic_loss_fn: Callable[..., Tuple[th.Tensor, th.Tensor]] = self.critic_loss
        self._actor_loss_fn: Callable[..., Tuple[th.Tensor, th.Tensor]] = self.actor_loss
        if self.compile_update:
            # Minibatch shapes never change in an RL run: static shapes, one graph per factor size.
            kwargs = {"dynamic": False, **self.compile_kwargs}
            self._critic_loss_fn = th.compile(self.critic_loss, **kwargs)
            self._actor_loss_fn = th.compile(self.actor_loss, **kwargs)

    def _setup_cuda_graph(self) -> None:
        """With ``cuda_graph``: capturable optimizers and the graphed step (captured on first use);
        without: the optimizers released from a capturable state a saved file may bring."""
        self._graphed_step: Optional[GraphedStep] = None
        if not self.cuda_graph:
            for optimizer in self.optimizers:
                release_capturable(optimizer)
            return
        reason = graph_supported(self.device)
        if reason is not None:
            raise ValueError(f"{reason}; pass cuda_graph=False (also to load() a graphed model on such a device)")
        for optimizer in self.optimizers:
            make_capturable(optimizer, self.device)
        self._graphed_step = GraphedStep(self._gradient_step)

    @property
    def step_function(self) -> Callable[..., Dict[str, th.Tensor]]:
        """What ``train`` calls per minibatch: the graphed step with ``cuda_graph``, else the eager one."""
        return self._graphed_step if self._graphed_step is not None else self._gradient_step

    def _keep(self, **values: th.Tensor) -> Dict[str, th.Tensor]:
        """``values``, cloned when they may be outputs of a compiled (possibly CUDA-graphed) loss,
        which the next replay would overwrite."""
        return {key: value.clone() for key, value in values.items()} if self.compile_update else values

    def set_parameters(self, *args: Any, **kwargs: Any) -> None:
        """SB3's ``set_parameters``; then the optimizers are made (non-)capturable again for this
        model's ``cuda_graph``, and captured graphs, which hold the replaced tensors, are dropped."""
        super().set_parameters(*args, **kwargs)  # type: ignore[misc]
        self._setup_cuda_graph()

    def _update_learning_rate(self, optimizers: Union[List[th.optim.Optimizer], th.optim.Optimizer]) -> None:
        """SB3's learning-rate update, writing into the tensor learning rates of graphed optimizers."""
        learning_rate = self.lr_schedule(self._current_progress_remaining)  # type: ignore[attr-defined]
        self.logger.record("train/learning_rate", learning_rate)  # type: ignore[attr-defined]
        for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
            set_learning_rate(optimizer, learning_rate)
