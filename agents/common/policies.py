"""Networks both categorical SAC agents use: the categorical actor, the twin-critic base and the
policy that owns actor, critic and target critic (the layout of SB3's ``SACPolicy``). Each agent's
critic is in its own ``policies.py``."""

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
    """``n_critics`` independent Q-networks on top of one features extractor: the base of
    DiffCatSAC's ``OneHotCritic`` and DiscreteSAC's ``ActionValueCritic``.

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

