"""Networks shared by the categorical SAC agents: the categorical actor, the two twin critics and
the policy that owns actor, critic and target critic (the same layout as SB3's ``SACPolicy``)."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    create_mlp,
    get_actor_critic_arch,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.nn import functional as F

from rl_diffcat.agents.common.action_masks import check_masks
from rl_diffcat.agents.common.action_spaces import action_dims
from rl_diffcat.distributions import MultiDiffusionCategorical


class TraceableFeatures:
    """``extract_features`` without a graph break under ``torch.compile``.

    SB3's ``preprocess_obs`` asks ``is_image_space`` on every call, which compares the space's
    bounds with numpy and breaks a compiled graph there (14 breaks per loss with the MinAtar CNN).
    The answer depends on the space alone, so the constructor decides it once
    (:meth:`_decide_image_scaling`).
    """

    observation_space: spaces.Space
    normalize_images: bool
    scale_images: bool

    def _decide_image_scaling(self) -> None:
        self.scale_images = bool(self.normalize_images and is_image_space(self.observation_space))

    def extract_features(self, obs: PyTorchObs, features_extractor: BaseFeaturesExtractor) -> th.Tensor:
        if not isinstance(self.observation_space, spaces.Box):
            return features_extractor(preprocess_obs(obs, self.observation_space, self.normalize_images))
        return features_extractor(obs.float() / 255.0 if self.scale_images else obs.float())


class CategoricalActor(TraceableFeatures, BasePolicy):
    """Actor that outputs one categorical distribution per action factor.

    The network maps observations to the concatenated logits of all factors (``sum(K_i)`` outputs);
    :meth:`distribution` wraps them in a :class:`MultiDiffusionCategorical`, whose ``rsample`` gives
    hard one-hot actions with a pathwise gradient.

    :param observation_space: observation space.
    :param action_space: ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` action space.
    :param net_arch: hidden layer sizes.
    :param features_extractor: network that extracts features from observations.
    :param features_dim: number of features.
    :param activation_fn: activation function.
    :param normalize_images: divide image observations by 255.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: List[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: Type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self._decide_image_scaling()
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.action_dims = action_dims(action_space)
        self.latent_pi = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        self.logits_net = nn.Linear(net_arch[-1] if net_arch else features_dim, sum(self.action_dims))

    def _get_constructor_parameters(self) -> Dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                features_dim=self.features_dim,
                activation_fn=self.activation_fn,
                features_extractor=self.features_extractor,
            )
        )
        return data

    def logits(self, obs: PyTorchObs) -> th.Tensor:
        """Concatenated unnormalized logits of every factor, shape ``(batch, sum(K_i))``."""
        return self.logits_net(self.latent_pi(self.extract_features(obs, self.features_extractor)))

    def distribution(self, obs: PyTorchObs, mask: Optional[th.Tensor] = None, **sampler_settings: Any) -> MultiDiffusionCategorical:
        """The policy ``pi(.|obs)``.

        :param obs: batch of observations.
        :param mask: optional bool ``(batch, sum(K_i))``, False = invalid action (zero probability).
        :param sampler_settings: ``sampler``, ``n_steps``, ``t_1``, ``tau`` used by ``rsample``.
        """
        return MultiDiffusionCategorical(self.logits(obs), self.action_dims, mask=mask, validate_args=False, **sampler_settings)

    def forward(self, obs: PyTorchObs, deterministic: bool = False, mask: Optional[th.Tensor] = None) -> th.Tensor:
        """Action indices ``(batch, n_factors)``: argmax if ``deterministic`` else a sample of ``pi``
        (restricted to the valid actions of ``mask`` when given)."""
        dist = self.distribution(obs, mask=mask)
        return dist.mode_indices if deterministic else dist.sample_indices()

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class TwinCritic(TraceableFeatures, BaseModel):
    """``n_critics`` independent Q-networks on top of one features extractor (base of both critics).

    :param observation_space: observation space.
    :param action_space: action space.
    :param net_arch: hidden layer sizes of each Q-network.
    :param features_extractor: network that extracts features from observations.
    :param features_dim: number of features.
    :param activation_fn: activation function.
    :param normalize_images: divide image observations by 255.
    :param n_critics: number of Q-networks.
    :param share_features_extractor: the extractor is the actor's (then only the actor loss trains it).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: List[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: Type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = False,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self._decide_image_scaling()
        self.action_dims = action_dims(action_space)
        self.share_features_extractor = share_features_extractor
        self.n_critics = n_critics
        in_dim, out_dim = self.q_net_dims(features_dim)
        self.q_networks: List[nn.Module] = []
        for idx in range(n_critics):
            q_net = nn.Sequential(*create_mlp(in_dim, out_dim, net_arch, activation_fn))
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    def q_net_dims(self, features_dim: int) -> Tuple[int, int]:
        """:return: input and output sizes of each Q-network."""
        raise NotImplementedError

    def features(self, obs: PyTorchObs) -> th.Tensor:
        # A shared extractor is trained by the actor loss only (as in SB3's SAC).
        with th.set_grad_enabled(th.is_grad_enabled() and not self.share_features_extractor):
            return self.extract_features(obs, self.features_extractor)


def _difference_forward(
    layers: nn.Sequential, base: th.Tensor, rows: th.Tensor, matmul_dtype: th.dtype
) -> Tuple[th.Tensor, th.Tensor]:
    """``layers(rows)`` for rows close to ``base`` (broadcast against them), with each hidden linear
    layer computed as ``W x_base + b`` in float32 plus ``W (x_row - x_base)`` in ``matmul_dtype``.

    The actor needs the *differences* between neighbour values, which are small next to Q itself:
    rounded to bfloat16, a Q of 130 has a spacing of 0.5 and loses them. Here the rounding error
    scales with each row's difference from ``base`` instead. The last (output) layer is float32.

    :return: ``layers(rows)`` and ``layers(base)``, the float32 anchor chain computed on the way
        (the caller's value at ``a``, so it need not run the layers on ``base`` a second time).
    """
    modules = list(layers)
    for index, module in enumerate(modules):
        if isinstance(module, nn.Linear) and index < len(modules) - 1:
            delta = F.linear((rows - base).to(matmul_dtype), module.weight.to(matmul_dtype))
            base = module(base)
            rows = delta.to(base.dtype).add_(base)
        else:
            base, rows = module(base), module(rows)
    return rows, base


class OneHotCritic(TwinCritic):
    """Joint critic ``Q_i(s, a)`` taking the concatenated one-hot action as input.

    Its size grows with ``sum(K_i)``, not with the number of joint actions ``prod(K_i)``, which is
    what makes combinatorial (``MultiDiscrete``/``MultiBinary``) action spaces tractable.
    """

    #: Largest table of first-layer differences (rows of ``hidden`` floats) neighbour_values builds.
    max_pair_table_rows: ClassVar[int] = 16384
    #: Device types on which neighbour_values evaluates every column in one broadcast instead of
    #: ``a`` once plus its other neighbours. On a GPU this batch is launch-bound, not arithmetic-bound:
    #: the broadcast's fewer kernels were faster on an H200 (BENCHMARKS, "Neighbour values on the GPU").
    broadcast_device_types: ClassVar[Tuple[str, ...]] = ("cuda",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._build_neighbour_tables()

    def _build_neighbour_tables(self) -> None:
        """Index tables of :meth:`OneHotCritic.neighbour_values`, built once (buffers, not saved).

        A neighbour of ``a`` switches one factor ``i`` to another of its categories: slot ``r`` of
        factor ``i`` (``0 <= r < K_i - 1``) is category ``r``, or ``r + 1`` from ``a_i`` on. Its
        first-layer input differs from ``a``'s by ``W[:, k] - W[:, a_i]``, one row of a table of
        every ordered pair ``(a_i, k != a_i)`` of each factor. Past ``max_pair_table_rows`` pairs (factors
        with categories in the hundreds) the two columns are gathered per state instead. A single
        factor, and any space on ``broadcast_device_types``, reads none of these tables: column ``j``
        is ``a`` minus its factor's current column plus column ``j`` (``column_factor``), one broadcast.
        """
        # One factor (Discrete): a's row is one of the K anyway, so one broadcast over all columns.
        self.single_factor = len(self.action_dims) == 1
        self.pair_table = sum(k * (k - 1) for k in self.action_dims) <= self.max_pair_table_rows
        slot_factor, slot_offset, pair_from, pair_to, pair_base, stride = [], [], [], [], [], []
        start, n_pairs = 0, 0
        for factor, k in enumerate(self.action_dims):
            if self.pair_table:
                pairs = [(current, other) for current in range(k) for other in range(k) if other != current]
                pair_from += [start + current for current, _ in pairs]
                pair_to += [start + other for _, other in pairs]
            for offset in range(k - 1):
                slot_factor.append(factor)
                slot_offset.append(offset)
                pair_base.append(n_pairs + offset)
                stride.append(k - 1)
            start, n_pairs = start + k, n_pairs + k * (k - 1)
        long = dict(dtype=th.long)
        starts = th.tensor(self.action_dims, **long).cumsum(0) - th.tensor(self.action_dims, **long)
        slot_factor_t = th.tensor(slot_factor, **long)
        for name, value in (
            ("factor_start", starts),
            ("slot_factor", slot_factor_t),
            ("slot_offset", th.tensor(slot_offset, **long)),
            ("slot_column_base", starts[slot_factor_t] + th.tensor(slot_offset, **long)),
            ("slot_pair_base", th.tensor(pair_base, **long)),
            ("slot_pair_stride", th.tensor(stride, **long)),
            ("pair_from", th.tensor(pair_from, **long)),
            ("pair_to", th.tensor(pair_to, **long)),
            ("column_factor", th.repeat_interleave(th.arange(len(self.action_dims)), th.tensor(self.action_dims, **long))),
        ):
            self.register_buffer(name, value, persistent=False)

    def q_net_dims(self, features_dim: int) -> Tuple[int, int]:
        return features_dim + sum(self.action_dims), 1

    def forward(self, obs: PyTorchObs, one_hot_actions: th.Tensor) -> Tuple[th.Tensor, ...]:
        """:return: one ``(batch, 1)`` Q-value tensor per critic."""
        q_input = th.cat([self.features(obs), one_hot_actions], dim=1)
        return tuple(q_net(q_input) for q_net in self.q_networks)

    def neighbour_values(
        self, obs: PyTorchObs, one_hot_actions: th.Tensor, matmul_dtype: Optional[th.dtype] = None
    ) -> Tuple[th.Tensor, ...]:
        """Q-values of the actions one factor away: entry ``j`` (category ``k`` of factor ``i``) is
        ``Q(s, a)`` with factor ``i`` of ``one_hot_actions`` switched to ``k`` (``a`` itself where
        ``k = a_i``). These ``sum(K_i)`` values are the gradient of the critic's multilinear
        extension at the vertex ``a``.

        :param matmul_dtype: None: float32 throughout. ``th.bfloat16``: the hidden-to-hidden matrix
            products run in bfloat16 on each neighbour's *difference* from ``a`` (see
            :func:`_difference_forward`), for CPUs with AMX and for tensor cores.
        :return: one ``(batch, sum(K_i))`` tensor per critic."""
        features = self.features(obs)
        one_hot = one_hot_actions.to(features.dtype)
        category = th.stack([block.argmax(-1) for block in th.split(one_hot, self.action_dims, dim=-1)], dim=-1)
        broadcast = self.single_factor or features.device.type in self.broadcast_device_types
        if broadcast:
            current_column = category + self.factor_start  # (batch, factors)
        else:
            # a itself is evaluated once; the other neighbours slot by slot (see _build_neighbour_tables):
            slot_category = category[:, self.slot_factor]  # (batch, slots): a's category in the slot's factor
            other_column = self.slot_column_base + (self.slot_offset >= slot_category).long()  # one-hot column
            if self.pair_table:
                pair = self.slot_pair_base + slot_category * self.slot_pair_stride  # row of the difference table
            else:
                current_column = slot_category + self.factor_start[self.slot_factor]
        n_features = features.shape[1]
        values = []
        for q_net in self.q_networks:
            first, rest = q_net[0], q_net[1:]
            # Only the first layer sees the action, so a neighbour's first pre-activation is a's plus
            # the difference of two weight columns: one matmul per state instead of one per neighbour.
            action_weight = first.weight[:, n_features:].T.contiguous()  # (sum K, hidden): row j = column j
            at_a = first(th.cat([features, one_hot], dim=1)).unsqueeze(1)  # (batch, 1, hidden)
            if broadcast:  # every column (a once per factor): one broadcast, no scatter
                without_factor = at_a - action_weight[current_column]  # (batch, factors, hidden)
                if not self.single_factor:
                    without_factor = without_factor[:, self.column_factor]  # (batch, sum K, hidden)
                pre_activation = without_factor + action_weight
                values.append(self._rest_forward(rest, at_a, pre_activation, matmul_dtype)[0])
                continue
            if self.pair_table:
                difference = action_weight[self.pair_to] - action_weight[self.pair_from]  # (pairs, hidden)
                switch = F.embedding(pair, difference)  # (batch, slots, hidden)
            else:
                switch = F.embedding(other_column, action_weight) - F.embedding(current_column, action_weight)
            q_others, q_a = self._rest_forward(rest, at_a, switch.add_(at_a), matmul_dtype, with_base=True)
            values.append(q_a.expand(-1, one_hot.shape[1]).scatter(1, other_column, q_others))
        return tuple(values)

    @staticmethod
    def _rest_forward(
        rest: nn.Sequential,
        at_a: th.Tensor,
        pre_activation: th.Tensor,
        matmul_dtype: Optional[th.dtype],
        with_base: bool = False,
    ) -> Tuple[th.Tensor, Optional[th.Tensor]]:
        """The layers after the first on neighbour pre-activations.

        :return: ``(batch, rows)`` values, and ``(batch, 1)`` float32 values at ``a`` (from the
            bfloat16 path's anchor chain, or one more float32 pass) if ``with_base``, else None
            where that costs a pass.
        """
        if matmul_dtype is None:
            return rest(pre_activation).squeeze(-1), rest(at_a).squeeze(-1) if with_base else None
        rows, base = _difference_forward(rest, at_a, pre_activation, matmul_dtype)
        return rows.squeeze(-1), base.squeeze(-1)

    def all_actions(self, obs: PyTorchObs) -> Tuple[th.Tensor, ...]:
        """Q-values of every action of a single-factor space: one ``(batch, K)`` tensor per critic."""
        if len(self.action_dims) != 1:
            raise ValueError("all_actions enumerates a single Discrete factor only")
        features = self.features(obs)
        n = self.action_dims[0]
        eye = th.eye(n, device=features.device, dtype=features.dtype).expand(features.shape[0], n, n)
        q_input = th.cat([features.unsqueeze(1).expand(-1, n, -1), eye], dim=2)
        return tuple(q_net(q_input).squeeze(-1) for q_net in self.q_networks)


class ActionValueCritic(TwinCritic):
    """Critic with one output per action, ``Q_i(s, .)``, as in discrete SAC (single ``Discrete`` space)."""

    def q_net_dims(self, features_dim: int) -> Tuple[int, int]:
        if len(self.action_dims) != 1:
            raise ValueError("ActionValueCritic needs a single Discrete action space")
        return features_dim, self.action_dims[0]

    def forward(self, obs: PyTorchObs) -> Tuple[th.Tensor, ...]:
        """:return: one ``(batch, K)`` Q-value tensor per critic."""
        features = self.features(obs)
        return tuple(q_net(features) for q_net in self.q_networks)


class CategoricalSACPolicy(BasePolicy):
    """Actor, critic and target critic of a categorical SAC agent (layout of SB3's ``SACPolicy``).

    Subclasses choose the critic (``critic_class``) and the default features extractor.

    :param observation_space: observation space.
    :param action_space: ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` action space.
    :param lr_schedule: learning rate schedule.
    :param net_arch: hidden sizes, a list shared by actor and critic or ``dict(pi=[...], qf=[...])``.
    :param activation_fn: activation function.
    :param features_extractor_class: features extractor (default: the subclass' default).
    :param features_extractor_kwargs: keyword arguments of the features extractor.
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: optimizer of actor and critic.
    :param optimizer_kwargs: optimizer keyword arguments other than the learning rate.
    :param n_critics: number of Q-networks.
    :param share_features_extractor: share the actor's features extractor with the critic.
    """

    critic_class: ClassVar[Type[TwinCritic]]
    default_features_extractor_class: ClassVar[Type[BaseFeaturesExtractor]] = FlattenExtractor
    actor: CategoricalActor
    critic: TwinCritic
    critic_target: TwinCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: Optional[Union[List[int], Dict[str, List[int]]]] = None,
        activation_fn: Type[nn.Module] = nn.ReLU,
        features_extractor_class: Optional[Type[BaseFeaturesExtractor]] = None,
        features_extractor_kwargs: Optional[Dict[str, Any]] = None,
        normalize_images: bool = True,
        optimizer_class: Type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: Optional[Dict[str, Any]] = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class or self.default_features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
        )
        if isinstance(n_critics, bool) or not isinstance(n_critics, int) or n_critics < 1:
            raise ValueError(f"n_critics must be an integer >= 1, got {n_critics!r}")
        self.net_arch = [256, 256] if net_arch is None else net_arch
        actor_arch, critic_arch = get_actor_critic_arch(self.net_arch)
        self.activation_fn = activation_fn
        self.share_features_extractor = share_features_extractor
        net_args = dict(
            observation_space=observation_space,
            action_space=action_space,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.actor_kwargs = dict(net_args, net_arch=actor_arch)
        self.critic_kwargs = dict(
            net_args, net_arch=critic_arch, n_critics=n_critics, share_features_extractor=share_features_extractor
        )
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = CategoricalActor(**self._update_features_extractor(self.actor_kwargs)).to(self.device)
        self.actor.optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        if self.share_features_extractor:
            self.critic = self.make_critic(self.actor.features_extractor)
            # The shared extractor is trained by the actor loss only.
            critic_parameters = [p for n, p in self.critic.named_parameters() if "features_extractor" not in n]
        else:
            self.critic = self.make_critic()
            critic_parameters = list(self.critic.parameters())
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.critic.optimizer = self.optimizer_class(critic_parameters, lr=lr_schedule(1), **self.optimizer_kwargs)

    def make_critic(self, features_extractor: Optional[BaseFeaturesExtractor] = None) -> TwinCritic:
        """Build a critic, sharing ``features_extractor`` if given."""
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return self.critic_class(**kwargs).to(self.device)

    def _get_constructor_parameters(self) -> Dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                n_critics=self.critic_kwargs["n_critics"],
                share_features_extractor=self.share_features_extractor,
                lr_schedule=self._dummy_schedule,
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
                features_extractor_class=self.features_extractor_class,
                features_extractor_kwargs=self.features_extractor_kwargs,
            )
        )
        return data

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)

    def predict(
        self,
        observation: Union[np.ndarray, Dict[str, np.ndarray]],
        state: Optional[Tuple[np.ndarray, ...]] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
        action_masks: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, Optional[Tuple[np.ndarray, ...]]]:
        """SB3's ``predict``, plus sb3-contrib's ``action_masks``: bools ``(n_obs, sum(K_i))`` (or
        one row for a single observation), False = never chosen."""
        # SB3's predict also explains a Gym ``(obs, info)`` tuple passed by mistake
        gym_reset_tuple = isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict)
        if action_masks is None or gym_reset_tuple:
            return super().predict(observation, state, episode_start, deterministic)
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        first = next(iter(obs_tensor.values())) if isinstance(obs_tensor, dict) else obs_tensor
        masks = check_masks(action_masks, self.actor.action_dims, first.shape[0], "predict(action_masks=...)")
        with th.no_grad():
            actions = self.actor(obs_tensor, deterministic, mask=th.as_tensor(masks, device=self.device))
        actions = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        return (actions if vectorized_env else actions.squeeze(axis=0)), state

    def set_training_mode(self, mode: bool) -> None:
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        self.training = mode

