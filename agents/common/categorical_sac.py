"""The categorical SAC algorithm both agents derive from, shaped like SB3's ``SAC``: setup, the
gradient step on one screen (:meth:`CategoricalSAC._gradient_step`), ``train`` with the target
update, temperature tuning, and what is saved. Each agent only writes its two losses
(``critic_loss`` and ``actor_loss``). Mixed in: :class:`ActionMasksMixin` (action masks in
rollouts), :class:`CompiledUpdateMixin` (``compile_update`` and ``cuda_graph`` around the step)
and :class:`TemperatureMixin` (``alpha``);
hyperparameters are checked by :func:`check_sac_hyperparameters`."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, TypeVar, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import get_parameters_by_name
from torch.nn import functional as F

from rl_diffcat.agents.common.action_masks import ActionMasksMixin, log_valid_counts
from rl_diffcat.agents.common.action_spaces import FACTORED_SPACES, action_dims, check_action_space
from rl_diffcat.agents.common.compiled import CompiledUpdateMixin
from rl_diffcat.agents.common.hyperparameters import check_sac_hyperparameters
from rl_diffcat.agents.common.nonfinite import check_first_observation, check_logged_means, check_transition
from rl_diffcat.agents.common.policies import CategoricalActor, CategoricalSACPolicy, TwinCritic
from rl_diffcat.agents.common.temperature import TemperatureMixin
from rl_diffcat.distributions import indices_to_one_hot
from rl_diffcat.serialization import SafeLoadMixin

SelfCategoricalSAC = TypeVar("SelfCategoricalSAC", bound="CategoricalSAC")


def polyak_update(params: List[th.Tensor], target_params: List[th.Tensor], tau: float) -> None:
    """SB3's ``polyak_update`` with the same arithmetic (scale the targets by ``1 - tau``, add
    ``tau`` x the parameters), as two multi-tensor ops instead of two ops per parameter: on a GPU
    each op is a kernel launch, and the SAC update is launch-bound."""
    if len(params) != len(target_params):
        raise ValueError(f"{len(params)} parameters for {len(target_params)} target parameters")
    if not params:
        return
    with th.no_grad():
        th._foreach_mul_(target_params, 1 - tau)
        th._foreach_add_(target_params, params, alpha=tau)


class CategoricalSAC(SafeLoadMixin, ActionMasksMixin, CompiledUpdateMixin, TemperatureMixin, OffPolicyAlgorithm):
    """Soft actor-critic for factored categorical action spaces (base class, not used directly).

    The temperature ``alpha`` (``ent_coef``) is tuned toward a target entropy given as a fraction of
    the maximum entropy ``sum_i log K_i``, and ``log(alpha)`` is clipped to ``ent_coef_bounds`` after
    every step: with a target the policy cannot reach, discrete SAC's ``alpha`` otherwise grows
    without limit until the entropy bonus swamps the rewards.

    :param policy: policy class or alias (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy``).
    :param env: environment or its registered id.
    :param learning_rate: Adam learning rate of actor, critic and temperature (or a schedule).
    :param buffer_size: replay buffer size.
    :param learning_starts: environment steps with uniform-random actions before learning.
    :param batch_size: minibatch size.
    :param tau: Polyak coefficient of the target critics.
    :param gamma: discount factor.
    :param train_freq: update every ``train_freq`` steps (or ``(n, "episode")``).
    :param gradient_steps: gradient steps per update (-1: as many as environment steps).
    :param replay_buffer_class: replay buffer class (default ``ReplayBuffer``).
    :param replay_buffer_kwargs: replay buffer keyword arguments.
    :param optimize_memory_usage: memory-efficient replay buffer.
    :param n_steps: n-step returns in the replay buffer (SB3's ``NStepReplayBuffer``).
    :param ent_coef: ``"auto"`` (tuned, starting at 1), ``"auto_<init>"`` or a fixed float.
    :param target_entropy_scale: target entropy as a fraction in (0, 1] of ``sum_i log K_i``.
    :param ent_coef_bounds: ``(min, max)`` of the tuned ``alpha``.
    :param twin_q: combine the twin critics by ``"min"`` (clipped double Q) or ``"mean"``.
    :param backup_entropy: add ``alpha * H(pi(.|s'))`` to the critic target (soft Q-learning). With
        ``False`` the critics learn plain Q-values and the entropy only regularizes the actor, so the
        Q scale no longer grows with ``alpha``.
    :param max_grad_norm: clip actor and critic gradient norms (``None``: no clipping).
    :param target_update_interval: gradient steps between target updates (counted over the whole
        run, not within each ``train`` call as SB3's SAC counts).
    :param compile_update: run the critic and actor losses (forward and backward) through
        ``torch.compile``; the optimizer steps stay eager. Same algorithm, fewer kernel launches and
        temporaries: meant for CUDA, where the small networks of RL are launch-bound.
    :param compile_kwargs: keyword arguments of ``torch.compile`` (``mode``, ``backend``, ...; the
        default ``dynamic=False`` compiles for the fixed minibatch shapes).
    :param cuda_graph: capture each whole gradient step (both losses, their backward passes, the
        optimizer and temperature steps) as one CUDA graph and replay it on every new minibatch
        (:mod:`rl_diffcat.agents.common.cuda_graph`). CUDA only; the optimizers are made
        capturable (Adam and the like). Same algorithm, launched from the host once per step.
        Combines with ``compile_update`` in its default mode (not with the CUDA-graph modes).
    :param use_action_masks: mask invalid actions with the env's ``action_masks()`` (sb3-contrib's
        convention: one bool per action, the factors concatenated). ``None`` turns it on when the
        env has that method. Masked actions are never taken (warm-up included), the actor and the
        critic's target see only valid actions, and the target entropy is the same fraction of the
        entropy of the uniform policy over the valid actions. With ``n_steps > 1`` the buffer is
        ``MaskedNStepReplayBuffer``. Not with ``optimize_memory_usage`` or ``cuda_graph`` yet.
    :param stats_window_size: episodes averaged in the rollout logs.
    :param tensorboard_log: TensorBoard log folder (``None``: no logging).
    :param policy_kwargs: policy keyword arguments (``net_arch``, ``n_critics``, ...).
    :param verbose: 0 silent, 1 info, 2 debug.
    :param seed: random seed.
    :param device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    :param _init_setup_model: build the networks now.
    """

    policy: CategoricalSACPolicy
    actor: CategoricalActor
    critic: TwinCritic
    critic_target: TwinCritic
    supported_action_spaces: ClassVar[Tuple[Type[spaces.Space], ...]] = FACTORED_SPACES

    def __init__(
        self,
        policy: Union[str, Type[CategoricalSACPolicy]],
        env: Union[GymEnv, str],
        learning_rate: Union[float, Schedule] = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: Union[int, Tuple[int, str]] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: Optional[Type[ReplayBuffer]] = None,
        replay_buffer_kwargs: Optional[Dict[str, Any]] = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: Union[str, float] = "auto",
        target_entropy_scale: float = 0.5,
        ent_coef_bounds: Tuple[float, float] = (1e-4, 1.0),
        twin_q: str = "min",
        backup_entropy: bool = True,
        max_grad_norm: Optional[float] = None,
        target_update_interval: int = 1,
        compile_update: bool = False,
        compile_kwargs: Optional[Dict[str, Any]] = None,
        cuda_graph: bool = False,
        use_action_masks: Optional[bool] = None,
        stats_window_size: int = 100,
        tensorboard_log: Optional[str] = None,
        policy_kwargs: Optional[Dict[str, Any]] = None,
        verbose: int = 0,
        seed: Optional[int] = None,
        device: Union[th.device, str] = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        checked = check_sac_hyperparameters(
            learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=learning_starts, batch_size=batch_size,
            tau=tau, gamma=gamma, train_freq=train_freq, gradient_steps=gradient_steps, n_steps=n_steps, ent_coef=ent_coef,
            target_entropy_scale=target_entropy_scale, ent_coef_bounds=ent_coef_bounds, twin_q=twin_q,
            backup_entropy=backup_entropy, max_grad_norm=max_grad_norm, target_update_interval=target_update_interval,
            compile_update=compile_update, compile_kwargs=compile_kwargs, cuda_graph=cuda_graph, use_action_masks=use_action_masks,
        )  # fails before the env and networks are built
        super().__init__(
            policy, env, checked["learning_rate"], buffer_size, learning_starts, batch_size, checked["tau"], checked["gamma"],
            checked["train_freq"], gradient_steps, action_noise=None, replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs, optimize_memory_usage=optimize_memory_usage, n_steps=n_steps,
            policy_kwargs=policy_kwargs, stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
            verbose=verbose, device=device, seed=seed, sde_support=False, support_multi_env=True,
            supported_action_spaces=None,  # checked in _setup_model with a helpful ValueError
        )
        self.ent_coef = ent_coef
        self.target_entropy_scale = checked["target_entropy_scale"]
        self.ent_coef_bounds = checked["ent_coef_bounds"]
        self.twin_q = twin_q
        self.backup_entropy = checked["backup_entropy"]
        self.max_grad_norm = max_grad_norm
        self.target_update_interval = target_update_interval
        self.compile_update = checked["compile_update"]
        self.compile_kwargs = checked["compile_kwargs"]
        self.cuda_graph = checked["cuda_graph"]
        self.use_action_masks = use_action_masks
        self._last_action_masks: Optional[np.ndarray] = None
        self._warned_predict_without_masks = False
        self.target_entropy: float = 0.0
        self.log_ent_coef: Optional[th.Tensor] = None
        self.ent_coef_optimizer: Optional[th.optim.Adam] = None
        if _init_setup_model:
            self._setup_model()

    # -- setup --------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        check_action_space(self.action_space, type(self).__name__, self.supported_action_spaces)
        if self.n_steps > 1 and isinstance(self.observation_space, spaces.Dict):
            # SB3 has no n-step buffer for Dict observations (it would stop on a bare assert)
            raise ValueError("n-step returns (n_steps > 1) are not supported with Dict observations: use n_steps=1")
        self._setup_action_masks()
        with warnings.catch_warnings():
            # SB3 warns that a given replay_buffer_class ignores n_steps: the masked one was set up for it above
            if self.use_action_masks:
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom `replay_buffer_class`")
            super()._setup_model()
        self._check_policy_family()
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self.policy_params = list(self.policy.parameters())
        self.critic_params = list(self.critic.parameters())
        self.critic_target_params = list(self.critic_target.parameters())
        self.batch_norm_stats = get_parameters_by_name(self.critic, ["running_"])
        self.batch_norm_stats_target = get_parameters_by_name(self.critic_target, ["running_"])
        self.action_dims = action_dims(self.action_space)
        self.max_entropy = float(sum(math.log(k) for k in self.action_dims))
        self.target_entropy = self.target_entropy_scale * self.max_entropy
        self._setup_temperature()
        self._setup_compiled_update()

    def _check_policy_family(self) -> None:
        """Refuse a policy of the other agent: the two critics score different things (Q(s, a) of a
        one-hot a, or Q(s, .) for every action), and ``load`` rebuilds whatever policy class the
        file names, so ``DiscreteSAC.load`` of a DiffCatSAC file would otherwise train nonsense."""
        family = getattr(self, "policy_aliases", {}).get("MlpPolicy")
        if family is not None and not isinstance(self.policy, family):
            policy = type(self.policy)
            raise ValueError(
                f"{type(self).__name__} needs a policy derived from {family.__name__}, got {policy.__module__}.{policy.__name__}"
                " (a model saved by another agent?)"
            )

    @property
    def optimizers(self) -> List[th.optim.Optimizer]:
        """The actor's, the critics' and (when tuned) the temperature's optimizer."""
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        return optimizers + ([self.ent_coef_optimizer] if self.ent_coef_optimizer is not None else [])

    # -- shared pieces of the update ----------------------------------------------------------
    def buffer_one_hot(self, actions: th.Tensor) -> th.Tensor:
        """Replay-buffer actions (indices per factor, as SB3 stores them) -> concatenated one-hots."""
        return indices_to_one_hot(actions.reshape(actions.shape[0], -1).long(), self.action_dims)

    def reduce_twin(self, q_values: Tuple[th.Tensor, ...]) -> th.Tensor:
        """Combine the critics' estimates by ``twin_q`` (min = clipped double Q, or mean)."""
        stacked = th.stack(q_values, dim=0)
        return stacked.min(dim=0).values if self.twin_q == "min" else stacked.mean(dim=0)

    def optimizer_step(self, optimizer: th.optim.Optimizer, loss: th.Tensor) -> None:
        """``zero_grad``, backward, optional gradient-norm clipping, step."""
        # Every gradient of the policy, not only this optimizer's: the actor's loss also reaches the
        # critics, and under CUDA graphs an old gradient lives in graph memory a replay reuses.
        for param in self.policy_params:  # policy.zero_grad(set_to_none=True), without the module walk
            param.grad = None
        loss.backward()
        if self.max_grad_norm is not None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            th.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        optimizer.step()

    @staticmethod
    def td_loss(current_q: Tuple[th.Tensor, ...], target_q: th.Tensor) -> th.Tensor:
        """Loss of every critic toward ``target_q``: ``L = 1/2 sum_i MSE(Q_i, y)``."""
        return 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)

    # -- the losses each agent writes -----------------------------------------------------------
    def critic_loss(
        self, replay_data: ReplayBufferSamples, discounts: Union[float, th.Tensor], alpha: th.Tensor
    ) -> Tuple[th.Tensor, th.Tensor]:
        """TD loss of the critics on a minibatch, and the mean of their Q(s, a) (detached).

        :param replay_data: minibatch from the replay buffer.
        :param discounts: ``gamma`` (or per-sample ``gamma^n`` with n-step returns).
        :param alpha: the current temperature (detached).
        """
        raise NotImplementedError

    def actor_loss(self, obs: Any, alpha: th.Tensor, mask: Optional[th.Tensor] = None) -> Tuple[th.Tensor, th.Tensor]:
        """Actor loss on a batch of observations, and the policy's mean entropy (detached).
        ``mask`` (bools ``(batch, sum(K_i))``, with action masks) restricts the policy to the valid actions."""
        raise NotImplementedError

    def _gradient_step(self, replay_data: ReplayBufferSamples, discounts: Union[float, th.Tensor]) -> Dict[str, th.Tensor]:
        """One gradient step on a minibatch, in SAC's order:

        1. critic: TD loss toward the soft target (the agent's ``critic_loss``), critic step;
        2. actor: the agent's ``actor_loss`` on the updated critics, actor step;
        3. temperature: ``alpha`` toward the target entropy (with masks, the same fraction of the
           entropy of the uniform policy on the valid actions), clipped to ``ent_coef_bounds``.

        The target critics follow in ``train``. No host sync here: ``cuda_graph`` captures this
        method whole and ``compile_update`` compiles the two losses (:mod:`.compiled`). Returns the
        logged values as detached scalar tensors, which ``train`` reads back once per call."""
        alpha = self.current_ent_coef
        masks = getattr(replay_data, "action_masks", None)
        critic_loss, q_mean = self._critic_loss_fn(replay_data, discounts, alpha)
        self.optimizer_step(self.critic.optimizer, critic_loss)
        logs = self._keep(critic_loss=critic_loss.detach(), q_mean=q_mean)  # before the actor's loss runs
        actor_loss, entropy = self._actor_loss_fn(replay_data.observations, alpha, masks)
        self.optimizer_step(self.actor.optimizer, actor_loss)
        logs.update(self._keep(actor_loss=actor_loss.detach(), entropy=entropy))
        if masks is None:
            self.ent_coef_update(logs["entropy"])
        else:  # aiming at the entropy of all actions, alpha would climb to its bound chasing the rest
            logs["target_entropy"] = self.target_entropy_scale * log_valid_counts(masks, self.action_dims).mean()
            self.ent_coef_update(logs["entropy"], logs["target_entropy"])
        logs["ent_coef"] = alpha
        return logs

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """``gradient_steps`` steps, each on a new minibatch, with the target critics' Polyak update
        every ``target_update_interval`` steps, counted over the whole run (SB3's SAC counts within
        each call: with ``gradient_steps=1`` it updated the targets on every step, whatever the interval)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.optimizers)
        step = self.step_function  # _gradient_step, or its CUDA graph
        logs: Dict[str, List[th.Tensor]] = defaultdict(list)
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            for key, value in step(replay_data, discounts).items():
                logs[key].append(value)
            if (self._n_updates + gradient_step) % self.target_update_interval == 0:
                polyak_update(self.critic_params, self.critic_target_params, self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if logs:  # one host sync for all logged quantities, which are also checked there
            means = dict(zip(logs, th.stack([th.stack(values).mean() for values in logs.values()]).tolist()))
            check_logged_means(type(self).__name__, means, self._n_updates, self.num_timesteps)
            for key, mean in means.items():
                self.logger.record(f"train/{key}", mean)

    # -- rollouts: finite inputs (the mask overrides are ActionMasksMixin's) ----------------------
    def _store_transition(
        self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray, dones: np.ndarray, infos: List[Dict[str, Any]]
    ) -> None:
        """SB3's ``_store_transition`` (with masks, :class:`ActionMasksMixin`'s), after checking
        that the env's reward and observations are finite (:mod:`~rl_diffcat.agents.common.nonfinite`)."""
        check_transition(type(self).__name__, self.num_timesteps, new_obs, reward, infos)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Tuple[int, Any]:
        """SB3's ``_setup_learn`` (with masks, :class:`ActionMasksMixin`'s); the first observation must be finite."""
        total_timesteps, callback = super()._setup_learn(*args, **kwargs)
        check_first_observation(type(self).__name__, self._last_obs)
        return total_timesteps, callback

    def learn(
        self: SelfCategoricalSAC,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 4,
        tb_log_name: Optional[str] = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCategoricalSAC:
        """SB3's ``learn``; the TensorBoard run is named after the agent class unless ``tb_log_name`` says otherwise."""
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or type(self).__name__,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # -- saving -------------------------------------------------------------------------------
    def _excluded_save_params(self) -> List[str]:
        # The network views (actor, critic, parameter lists) and compiled functions are rebuilt by
        # _setup_model on load; the weights travel in the policy's state dict.
        views = ["actor", "critic", "critic_target", "policy_params", "critic_params", "critic_target_params"]
        rebuilt = ["batch_norm_stats", "batch_norm_stats_target", *self.compiled_attributes]
        return super()._excluded_save_params() + views + rebuilt

    def _get_torch_save_params(self) -> Tuple[List[str], List[str]]:
        state_dicts = ["policy", "actor.optimizer", "critic.optimizer"]
        if self.ent_coef_optimizer is not None:
            return state_dicts + ["ent_coef_optimizer"], ["log_ent_coef"]
        return state_dicts, ["ent_coef_tensor"]
