"""DiffCatSAC: soft actor-critic whose actor gradient flows through a discrete sampler (ReDGE)."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type, Union

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule

from rl_diffcat.agents.common.categorical_sac import CategoricalSAC
from rl_diffcat.agents.diffcat_sac.neighbours import NEIGHBOUR_DTYPES, resolve_neighbour_dtype
from rl_diffcat.agents.diffcat_sac.policies import CnnPolicy, DiffCatSACPolicy, MlpPolicy, MultiInputPolicy
from rl_diffcat.samplers import make_sampler
from rl_diffcat.validation import check_bool

Q_GRADIENTS = ("neighbours", "autograd")


def check_diffcat_sac_hyperparameters(
    sampler: str, sampler_kwargs: Optional[Dict[str, Any]], exact_target: Any, normalize_q: Any, q_gradient: Any, neighbour_dtype: Any
) -> Dict[str, Any]:
    """Check DiffCatSAC's own hyperparameters (their meaning is documented in :class:`DiffCatSAC`)
    and raise ``ValueError`` naming the first bad one. The sampler and its knobs are checked by
    :func:`rl_diffcat.samplers.make_sampler`, whose error this only prefixes with the arguments.

    :return: ``sampler_kwargs`` with the agent's defaults (``n_steps=5``, ``t_1=0.5``) filled in,
        ``exact_target`` and ``normalize_q`` as Python bools."""
    sampler_kwargs = {"n_steps": 5, "t_1": 0.5, **(sampler_kwargs or {})}
    try:
        make_sampler(sampler, **sampler_kwargs)
    except ValueError as error:
        raise ValueError(f"invalid sampler={sampler!r} / sampler_kwargs={sampler_kwargs}: {error}") from None
    checked = dict(sampler_kwargs=sampler_kwargs, exact_target=check_bool("exact_target", exact_target))
    checked["normalize_q"] = check_bool("normalize_q", normalize_q)
    if q_gradient not in Q_GRADIENTS:
        raise ValueError(f"q_gradient must be one of {Q_GRADIENTS}, got {q_gradient!r}")
    _checked_neighbour_dtype(neighbour_dtype)
    return checked


def _checked_neighbour_dtype(neighbour_dtype: str) -> str:
    if neighbour_dtype not in (*NEIGHBOUR_DTYPES, "auto"):
        raise ValueError(f"neighbour_dtype must be one of {[*NEIGHBOUR_DTYPES, 'auto']}, got {neighbour_dtype!r}")
    return neighbour_dtype


class DiffCatSAC(CategoricalSAC):
    """Pathwise discrete SAC for ``Discrete``, ``MultiDiscrete`` and ``MultiBinary`` action spaces.

    The critics score the concatenated one-hot action, ``Q_i(s, a)``, so the agent scales to
    combinatorial action spaces. The actor is trained like continuous SAC, by back-propagating
    ``Q`` through a reparameterized hard one-hot action ``a~`` drawn by ``sampler`` (ReDGE by
    default); the entropy of the factorized categorical is computed exactly.

    The critic target samples ``a' ~ pi(.|s')`` by default (``exact_target=False``): it is the
    estimator that works for every action space, so Discrete and MultiDiscrete runs use the same
    algorithm. With a single ``Discrete`` space ``exact_target=True`` sums over all ``K`` actions
    instead (lower variance, ``K`` critic evaluations per next state).

    The actor's ``dQ/da~`` is, by default (``q_gradient="neighbours"``), the critic's values at the
    ``sum(K_i)`` actions one factor away from the sampled action, not the network's derivative at the
    one-hot input: the critic is never trained off the one-hot vertices, so that derivative can point
    the wrong way (the README shows how often).

    The actor's Q term is divided by the batch mean of ``|Q|`` by default (``normalize_q``): the
    loss is then ``E_s[-alpha H - Q(s, a~) / mean|Q|]``, i.e. the plain SAC loss with the temperature
    ``alpha * mean|Q|``. Without it the pathwise gradient grows with the Q scale, the entropy falls
    under its target, ``alpha`` rises, which raises the soft Q scale further, until ``alpha`` sits at
    its bound and the policy degrades (the README shows it on CartPole). Normalized, ``alpha`` no
    longer grows with the Q scale and the same bounds fit any reward scale.

    :param policy: ``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy`` or a policy class.
    :param env: environment or its registered id.
    :param learning_rate: learning rate of actor, critics and temperature (or a schedule).
    :param sampler: pathwise sampler, a name in :data:`rl_diffcat.samplers.SAMPLERS`.
    :param sampler_kwargs: sampler knobs ``n_steps``, ``t_1``, ``tau`` (unused ones are ignored).
        The agent's own ``n_steps`` argument is SB3's n-step return, not the sampler's DDIM steps.
    :param exact_target: critic target with the exact expectation over ``a'`` (``Discrete`` only).
    :param normalize_q: divide the actor's Q term by the batch mean of ``|Q|`` (detached), so the
        actor gradient does not grow with the reward scale and ``alpha`` keeps the same meaning.
        ``False`` gives the textbook loss ``E_s[-alpha H - min_i Q_i(s, a~)]``.
    :param q_gradient: where the actor's ``dQ/da~`` comes from. ``"neighbours"`` (default): the
        critic's values at the ``sum(K_i)`` actions one factor away from the sampled ``a``, i.e. the
        gradient of the critic's multilinear extension; ``"autograd"``: back-propagation through the
        critic network at the one-hot input (the textbook pathwise loss).
    :param neighbour_dtype: precision of the hidden matrix products of ``q_gradient="neighbours"``,
        the bulk of an update on large factored spaces (``a`` and its 60 neighbours per state on
        HalfCheetah).
        ``"float32"`` (default), ``"bfloat16"``, or ``"auto"`` (bfloat16 only where the device
        multiplies it in hardware, see :func:`~rl_diffcat.agents.diffcat_sac.neighbours.has_fast_bfloat16`; the choice is made per machine,
        so a model saved with ``"auto"`` picks again where it is loaded). bfloat16: products on each
        neighbour's difference from the sampled action, so the rounding scales with that difference, not with Q. Faster where
        bfloat16 has hardware support (AMX CPUs, tensor-core GPUs), slower elsewhere; the README
        gives the measured error and speed.
    :param target_entropy_scale: target entropy as a fraction in (0, 1] of ``sum_i log K_i``.
    :param ent_coef_bounds: ``(min, max)`` of the tuned temperature.
    :param kwargs: the other hyperparameters of :class:`rl_diffcat.agents.common.categorical_sac.CategoricalSAC`
        (``buffer_size``, ``batch_size``, ``tau``, ``gamma``, ``ent_coef``, ``twin_q``, ``policy_kwargs``, ...).
    """

    policy_aliases: ClassVar[Dict[str, Type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: DiffCatSACPolicy

    def __init__(
        self,
        policy: Union[str, Type[DiffCatSACPolicy]],
        env: Union[GymEnv, str],
        learning_rate: Union[float, Schedule] = 3e-4,
        sampler: str = "redge",
        sampler_kwargs: Optional[Dict[str, Any]] = None,
        exact_target: bool = False,
        normalize_q: bool = True,
        q_gradient: str = "neighbours",
        neighbour_dtype: str = "float32",
        target_entropy_scale: float = 0.5,
        ent_coef_bounds: Tuple[float, float] = (1e-4, 1.0),
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        checked = check_diffcat_sac_hyperparameters(sampler, sampler_kwargs, exact_target, normalize_q, q_gradient, neighbour_dtype)
        self.sampler = sampler
        self.sampler_kwargs = checked["sampler_kwargs"]
        self.exact_target = checked["exact_target"]
        self.normalize_q = checked["normalize_q"]
        self.q_gradient = q_gradient
        self._neighbour_dtype = neighbour_dtype
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            target_entropy_scale=target_entropy_scale,
            ent_coef_bounds=ent_coef_bounds,
            _init_setup_model=False,
            **kwargs,
        )
        if _init_setup_model:
            self._setup_model()

    @property
    def neighbour_dtype(self) -> str:
        return self._neighbour_dtype

    @neighbour_dtype.setter
    def neighbour_dtype(self, value: str) -> None:
        self._neighbour_dtype = _checked_neighbour_dtype(value)
        self._resolve_neighbour_matmul_dtype()

    def _resolve_neighbour_matmul_dtype(self) -> None:
        # once per device, out of the update: the hardware probe would break the compiled graph
        resolved = resolve_neighbour_dtype(self._neighbour_dtype, self.device)
        self._neighbour_matmul_dtype = NEIGHBOUR_DTYPES[resolved]

    def _setup_model(self) -> None:
        # ``load(path, neighbour_dtype=...)`` puts the keyword into __dict__, which the property
        # would shadow: take it over the saved value, as SB3 does for its other load keywords.
        if "neighbour_dtype" in self.__dict__:
            self._neighbour_dtype = _checked_neighbour_dtype(self.__dict__.pop("neighbour_dtype"))
        self._resolve_neighbour_matmul_dtype()
        super()._setup_model()
        if self.exact_target and not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"exact_target=True enumerates the actions of a single Discrete space; got {self.action_space}. "
                "Use exact_target=False (sampled next action) for MultiDiscrete/MultiBinary spaces"
            )

    def _excluded_save_params(self) -> list:
        # resolved again on load, for the device it loads on
        return super()._excluded_save_params() + ["_neighbour_matmul_dtype"]

    def pathwise_q(self, obs: th.Tensor, action: th.Tensor) -> th.Tensor:
        """``Q(s, a~)`` (twin critics reduced by ``twin_q``) for the actor loss, shape ``(batch,)``.

        ``action`` is the sampler's hard one-hot ``a~`` whose backward pass reaches the logits. With
        ``q_gradient="neighbours"`` the value is ``Q(s, a)`` and ``dQ/da~_j`` is the critic's value at
        the neighbour ``j`` of ``a`` (the gradient of its multilinear extension, exact along the
        simplex edges); with ``"autograd"`` it is the critic network's derivative at the one-hot
        input, which the critic never sees off the vertices and so can point the wrong way.
        """
        if self.q_gradient == "autograd":
            return self.reduce_twin(self.critic(obs, action)).squeeze(-1)
        with th.no_grad():
            hard = action.detach()
            q_neighbours = self.reduce_twin(self.critic.neighbour_values(obs, hard, self._neighbour_matmul_dtype))
            # the neighbour of a in its own category is a itself: read Q(s, a) off the first factor
            q_hard = (q_neighbours * hard)[:, : self.action_dims[0]].sum(-1)
        return q_hard + ((action - hard) * q_neighbours).sum(-1)

    def critic_loss(
        self, replay_data: ReplayBufferSamples, discounts: Union[float, th.Tensor], alpha: th.Tensor
    ) -> Tuple[th.Tensor, th.Tensor]:
        """Critic target: ``y = r + gamma (1 - d) [min_j Q'_j(s', a') + alpha H(pi(.|s'))]`` with
        ``a' ~ pi(.|s')`` (or the exact ``sum_a' pi(a'|s') min_j Q'_j(s', a')`` with ``exact_target``)."""
        next_obs = replay_data.next_observations
        with th.no_grad():
            next_dist = self.actor.distribution(next_obs, mask=getattr(replay_data, "next_action_masks", None))
            if self.exact_target:
                next_q_all = self.reduce_twin(self.critic_target.all_actions(next_obs))
                next_q = (next_dist.probs * next_q_all).sum(-1, keepdim=True)
            else:
                next_q = self.reduce_twin(self.critic_target(next_obs, next_dist.sample()))
            next_v = next_q + alpha * next_dist.entropy().unsqueeze(-1) if self.backup_entropy else next_q
            target_q = replay_data.rewards + (1 - replay_data.dones) * discounts * next_v
        current_q = self.critic(replay_data.observations, self.buffer_one_hot(replay_data.actions))
        return self.td_loss(current_q, target_q), th.stack(current_q).mean().detach()

    def actor_loss(self, obs: Any, alpha: th.Tensor, mask: Optional[th.Tensor] = None) -> Tuple[th.Tensor, th.Tensor]:
        """``L = E_s[ -alpha H(pi(.|s)) - min_i Q_i(s, a~) ]``, ``a~`` = the sampler's hard one-hot,
        whose backward pass carries ``dQ/da~`` into the logits (the pathwise gradient). A masked
        action is never sampled and its logit gets no gradient."""
        dist = self.actor.distribution(obs, mask=mask, sampler=self.sampler, **self.sampler_kwargs)
        entropy = dist.entropy()
        q_pi = self.pathwise_q(obs, dist.rsample())
        if self.normalize_q:
            q_pi = q_pi / q_pi.detach().abs().mean().clamp_min(1e-6)
        return (-alpha * entropy - q_pi).mean(), entropy.mean().detach()
