"""The algorithms the CLI can train, their hyperparameter files, and how a model is built.

Hyperparameters live in ``rl_diffcat/hyperparams/<algo>.yml`` in the style of rl-zoo3: one entry
per env id plus a ``default`` entry. The env entry is merged over ``default`` (one level deep
for ``policy_kwargs``/``sampler_kwargs``). Keys that are not constructor arguments:

* ``n_timesteps``: training budget (``--steps`` overrides it);
* ``policy``: an SB3 policy alias (``MlpPolicy``) or a policy class name from ``rl_diffcat.sb3``;
* ``n_envs``: number of training envs in the ``DummyVecEnv`` (default 1);
* ``normalize``: train on a ``VecNormalize``-wrapped env, as in rl-zoo3
  (:mod:`~rl_diffcat.benchmark.normalization`).

Strings ``lin_<x>`` for ``learning_rate``/``clip_range`` become a linear decay from ``x`` to 0,
``policy_kwargs.activation_fn`` may name a ``torch.nn`` module (``Tanh``, ``ReLU``), and
``policy_kwargs.features_extractor_class`` a features extractor of ours (``MinAtarCNN``) or SB3's
(``NatureCNN``).
Agent classes are imported only when a model is built, so this module imports even when an
optional agent is missing.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Dict, Optional, Tuple

import gymnasium as gym
import yaml
from gymnasium import spaces

from rl_diffcat.benchmark.hints import did_you_mean
from rl_diffcat.benchmark.normalization import check_algo_fits, normalize_kwargs, wrap_training_env

DISCRETE_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# Keys of a hyperparameter entry that configure the run rather than the model constructor.
RUN_KEYS = ("n_timesteps", "policy", "n_envs", "normalize")
_NESTED_KEYS = ("policy_kwargs", "sampler_kwargs")
_SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")


def _import(path: str) -> Callable[[], type]:
    module_name, attr = path.rsplit(":", 1)

    def load() -> type:
        return getattr(importlib.import_module(module_name), attr)

    return load


@dataclass(frozen=True)
class AlgoSpec:
    """How to build one algorithm.

    :param name: the CLI name (``diffcat-sac``).
    :param load_class: returns the SB3-style algorithm class (imported lazily).
    :param hyperparams_file: file name under ``rl_diffcat/hyperparams``.
    :param action_spaces: action space types the algorithm supports.
    :param sampler_path: where ``--sampler`` goes in the hyperparameters (None: no sampler).
    :param description: one line for ``--help``.
    :param needs_action_masks: the algorithm only runs on envs with ``action_masks()``.
    """

    name: str
    load_class: Callable[[], type]
    hyperparams_file: str
    action_spaces: Tuple[type, ...]
    sampler_path: Optional[Tuple[str, ...]]
    description: str
    needs_action_masks: bool = False


ALGOS: Dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "diffcat-sac",
            _import("rl_diffcat.agents:DiffCatSAC"),
            "diffcat_sac.yml",
            DISCRETE_SPACES,
            ("sampler",),
            "SAC with pathwise actor gradients through the ReDGE sampler (Discrete/MultiDiscrete/MultiBinary)",
        ),
        AlgoSpec(
            "discrete-sac",
            _import("rl_diffcat.agents:DiscreteSAC"),
            "discrete_sac.yml",
            (spaces.Discrete,),
            None,
            "standard discrete SAC (expectation over actions; Discrete only)",
        ),
        AlgoSpec(
            "ppo",
            _import("stable_baselines3:PPO"),
            "ppo.yml",
            DISCRETE_SPACES + (spaces.Box,),
            None,
            "stable-baselines3 PPO with its categorical policy",
        ),
        AlgoSpec(
            "sac",
            _import("stable_baselines3:SAC"),
            "sac.yml",
            (spaces.Box,),
            None,
            "stable-baselines3 SAC (continuous Box actions: the reference for the discretized tasks)",
        ),
        AlgoSpec(
            "ppo-diffcat",
            _import("stable_baselines3:PPO"),
            "ppo_diffcat.yml",
            DISCRETE_SPACES,
            ("policy_kwargs", "sampler"),
            "PPO whose policy distribution is the diffusion categorical (rl_diffcat.sb3)",
        ),
        AlgoSpec(
            "maskable-ppo",
            _import("sb3_contrib:MaskablePPO"),
            "maskable_ppo.yml",
            DISCRETE_SPACES,
            None,
            "sb3-contrib's MaskablePPO, for envs with action_masks() (the contrib extra)",
            needs_action_masks=True,
        ),
    )
}


def parse_algo(label: str) -> Tuple[AlgoSpec, Optional[str]]:
    """Split an algo label ``ALGO`` or ``ALGO:SAMPLER`` (e.g. ``diffcat-sac:gumbel_softmax``).

    :param label: the label given on the command line.
    :return: the algorithm spec and the sampler override (None when not given).
    """
    name, _, sampler = label.partition(":")
    if name not in ALGOS:
        raise ValueError(
            f"Unknown algo {name!r}{did_you_mean(name, ALGOS)}; "
            f"valid algos are: {', '.join(ALGOS)}"
        )
    spec = ALGOS[name]
    if sampler:
        from rl_diffcat.samplers import SAMPLERS

        if spec.sampler_path is None:
            raise ValueError(f"Algo {name!r} has no sampler; only {[a for a in ALGOS if ALGOS[a].sampler_path]} take one")
        if sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {sampler!r} in {label!r}; valid samplers are: {', '.join(SAMPLERS)}")
    return spec, sampler or None


def algo_label(algo: str, sampler: Optional[str] = None) -> str:
    """The name a run is reported under: ``ALGO`` or ``ALGO:SAMPLER`` when a sampler is given.

    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param sampler: a sampler that overrides the one in ``algo``.
    :return: the label.
    """
    return algo if sampler is None else f"{algo.partition(':')[0]}:{sampler}"


def default_model_path(env_id: str, label: str, seed: int) -> str:
    """Where ``rl-diffcat train`` saves a model unless told otherwise, and where ``evaluate`` looks.

    :param env_id: the env id (``rl_diffcat/...`` ids keep no slash in the file name).
    :param label: the algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param seed: the training seed.
    :return: ``models/<env>_<label>_seed<seed>.zip``.
    """
    return f"models/{env_id.replace('/', '-')}_{label.replace(':', '-')}_seed{seed}.zip"


def check_env_id(env_id: str) -> None:
    """Raise a ValueError listing close matches when ``env_id`` is not a registered gymnasium env.

    :param env_id: a gymnasium id such as ``CartPole-v1``.
    """
    try:  # our own envs (if any) register themselves on import
        importlib.import_module("rl_diffcat.envs")
    except ImportError:
        pass
    if env_id not in gym.registry:
        hints = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        raise ValueError(
            f"Unknown env id {env_id!r}; "
            + (f"did you mean one of {hints}? " if hints else "")
            + "see gymnasium.registry.keys() for the registered ids"
        )


def action_space_of(env_id: str) -> spaces.Space:
    """Make ``env_id`` once to read its action space; a missing optional dependency (Box2D,
    MuJoCo, MinAtar) becomes a ValueError that says what to install.

    :param env_id: a registered env id.
    :return: the env's action space.
    """
    check_env_id(env_id)
    try:
        env = gym.make(env_id)
    except (gym.error.DependencyNotInstalled, ImportError) as error:  # gymnasium's, or a bare missing module
        raise ValueError(f"{env_id} needs an optional dependency: {error} (or pip install 'rl-diffcat[all]')") from error
    action_space = env.action_space
    env.close()
    return action_space


def env_has_action_masks(env_id: str) -> bool:
    """Whether ``env_id`` masks invalid actions: it has sb3-contrib's ``action_masks()`` method.

    :param env_id: a registered env id.
    """
    env = gym.make(env_id)
    try:
        return env.has_wrapper_attr("action_masks")
    finally:
        env.close()


def check_action_space(spec: AlgoSpec, env_id: str, action_space: spaces.Space) -> None:
    """Raise a ValueError naming the algos that fit when ``spec`` does not support the action space
    (or, for an algorithm that needs them, when the env has no action masks).

    :param spec: the algorithm.
    :param env_id: the env id, for the message.
    :param action_space: the env's action space.
    """
    if spec.needs_action_masks and not env_has_action_masks(env_id):
        raise ValueError(
            f"{spec.name} needs an env with action_masks() (such as rl_diffcat/PolyProg-Masked-D16-v0); {env_id} has none"
        )
    if not isinstance(action_space, spec.action_spaces):
        fitting = [
            name for name, other in ALGOS.items()
            if isinstance(action_space, other.action_spaces) and not (other.needs_action_masks and not env_has_action_masks(env_id))
        ]
        from rl_diffcat.envs import discretized_id

        supported = "/".join(t.__name__ for t in spec.action_spaces)
        discrete_twin = discretized_id(env_id)
        twin_hint = (
            f"; or train {spec.name} on its discretized version {discrete_twin}"
            if discrete_twin is not None and issubclass(spaces.MultiDiscrete, spec.action_spaces)
            else ""
        )
        raise ValueError(
            f"{spec.name} supports only {supported} action spaces, but {env_id} has {action_space}; "
            f"algos that support it: {', '.join(fitting) or 'none'}{twin_hint}"
        )


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-3`` as a float (YAML 1.2), not as a string:
    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``), so ``learning_rate=1e-3``
    on the command line would reach the algorithm as the string ``'1e-3'``."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse hyperparameter YAML (the files, and the values of ``--hyperparams KEY=VALUE``)."""
    return yaml.load(text, Loader=_YamlLoader)


def _read_yaml(file_name: str) -> Dict[str, Any]:
    text = resources.files("rl_diffcat").joinpath("hyperparams", file_name).read_text()
    return load_yaml(text) or {}


def load_hyperparams(
    algo: str,
    env_id: str,
    sampler: Optional[str] = None,
    overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Hyperparameters of ``algo`` on ``env_id``: the file's ``default`` entry, then the env entry,
    then ``sampler`` and ``overrides`` on top.

    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param env_id: the env id.
    :param sampler: sampler override (also accepted inside ``algo``).
    :param overrides: ``{key: value}`` set last; a dotted key ``policy_kwargs.net_arch`` sets a nested value.
    :return: a new dict, safe to modify.
    """
    spec, label_sampler = parse_algo(algo)
    sampler = sampler or label_sampler
    table = _read_yaml(spec.hyperparams_file)
    params = copy.deepcopy(table.get("default", {}))
    for key, value in copy.deepcopy(table.get(env_id, {})).items():
        if key in _NESTED_KEYS and isinstance(value, dict):
            params.setdefault(key, {}).update(value)
        else:
            params[key] = value
    if sampler is not None:
        if spec.sampler_path is None:
            raise ValueError(f"--sampler is only valid for {[a for a in ALGOS if ALGOS[a].sampler_path]}, not {spec.name}")
        parse_algo(f"{spec.name}:{sampler}")  # validates the sampler name
        _set_nested(params, spec.sampler_path, sampler)
    for key, value in (overrides or {}).items():
        _set_nested(params, tuple(key.split(".")), value)
    return params


def _set_nested(params: Dict[str, Any], path: Tuple[str, ...], value: Any) -> None:
    node = params
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _resolve(params: Dict[str, Any]) -> Dict[str, Any]:
    """Turn the data-file spellings (``lin_3e-4``, ``activation_fn: Tanh``) into Python objects."""
    from stable_baselines3.common.utils import LinearSchedule

    kwargs = dict(params)
    for key in _SCHEDULE_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            kwargs[key] = LinearSchedule(float(value[4:]), 0.0, 1.0)
    policy_kwargs = resolve_policy_kwargs(kwargs.get("policy_kwargs") or {})
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    return kwargs


def resolve_policy_kwargs(policy_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of ``policy_kwargs`` with the class names of the data files (``activation_fn: Tanh``,
    ``features_extractor_class: MinAtarCNN``) turned into the classes."""
    import torch.nn

    policy_kwargs = dict(policy_kwargs)
    activation = policy_kwargs.get("activation_fn")
    if isinstance(activation, str):
        if not hasattr(torch.nn, activation):
            raise ValueError(f"policy_kwargs.activation_fn={activation!r} is not a torch.nn module (try Tanh or ReLU)")
        policy_kwargs["activation_fn"] = getattr(torch.nn, activation)
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, str):
        policy_kwargs["features_extractor_class"] = _features_extractor(extractor)
    return policy_kwargs


def _features_extractor(name: str) -> type:
    """A features extractor class named in a data file: ours (``rl_diffcat.envs``) or SB3's."""
    from stable_baselines3.common import torch_layers

    import rl_diffcat.envs

    for module in (rl_diffcat.envs, torch_layers):
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and issubclass(candidate, torch_layers.BaseFeaturesExtractor):
            return candidate
    raise ValueError(
        f"policy_kwargs.features_extractor_class={name!r} is not a features extractor of rl_diffcat.envs "
        "(MinAtarCNN) or stable_baselines3 (NatureCNN, FlattenExtractor, ...)"
    )


def _resolve_policy(algo_class: type, policy: Any) -> Any:
    if not isinstance(policy, str) or policy in getattr(algo_class, "policy_aliases", {}):
        return policy
    for module_name in ("rl_diffcat.sb3", "rl_diffcat.sb3.maskable"):  # the second needs sb3-contrib
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, policy):
            return getattr(module, policy)
    raise ValueError(
        f"Unknown policy {policy!r}: not an alias of {algo_class.__name__} "
        f"({sorted(getattr(algo_class, 'policy_aliases', {}))}) nor a class in rl_diffcat.sb3 or rl_diffcat.sb3.maskable"
    )


def _algo_class(spec: AlgoSpec) -> type:
    try:
        return spec.load_class()
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{spec.name} is not available in this install ({error})") from error


def make_training_env(env_id: str, params: Dict[str, Any], seed: int, vecnormalize_stats: Optional[str] = None, trust_file: bool = False):
    """The ``DummyVecEnv`` of ``params["n_envs"]`` (default 1) training envs, seeded ``seed, seed + 1, ...``.
    Envs with ``action_masks()`` also report each step's mask in ``info`` (:class:`ActionMasksInInfo`),
    where the SAC agents find the mask of an episode's last observation. With ``normalize`` in
    ``params`` it is wrapped in ``VecNormalize``, whose statistics start from ``vecnormalize_stats``
    (a checkpoint's) when given; a pickled statistics file is read only with ``trust_file``."""
    from stable_baselines3.common.env_util import make_vec_env

    importlib.import_module("rl_diffcat.envs")  # registers the rl_diffcat/ ids (resume reaches here first)
    normalize = normalize_kwargs(params)  # a bad value fails before any env is made
    venv = make_vec_env(env_id, n_envs=int(params.get("n_envs", 1)), seed=seed, wrapper_class=_masks_in_info)
    return venv if normalize is None else wrap_training_env(venv, normalize, vecnormalize_stats, trust_file)


def _masks_in_info(env: Any) -> Any:
    """``env`` wrapped in :class:`ActionMasksInInfo` when it has ``action_masks()``, else as it is."""
    from rl_diffcat.envs import ActionMasksInInfo

    return ActionMasksInInfo(env) if env.has_wrapper_attr("action_masks") else env


def make_model(
    algo: str,
    env_id: str,
    params: Dict[str, Any],
    seed: int,
    device: str = "auto",
    tensorboard_log: Optional[str] = None,
    verbose: int = 0,
):
    """Build the training env and the model of ``algo`` from resolved hyperparameters.

    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER`` (the sampler must already be in ``params``).
    :param env_id: the env id.
    :param params: hyperparameters from :func:`load_hyperparams`.
    :param seed: seed of the model and of the training envs.
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    :param tensorboard_log: TensorBoard folder, or None.
    :param verbose: SB3 verbosity.
    :return: the SB3 model, with its training env attached.
    """
    spec, _ = parse_algo(algo)
    check_action_space(spec, env_id, action_space_of(env_id))
    algo_class, kwargs = _algo_arguments(algo, params)
    env = make_training_env(env_id, params, seed)
    try:
        check_algo_fits(algo_class, env)
    except ValueError:
        env.close()
        raise
    return algo_class(
        _resolve_policy(algo_class, params.get("policy", "MlpPolicy")),
        env,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **kwargs,
    )


def _algo_arguments(algo: str, params: Dict[str, Any]) -> Tuple[type, Dict[str, Any]]:
    """The algorithm class and its constructor arguments from ``params`` (the run keys taken out);
    a name the class does not take is a ValueError naming the closest ones."""
    kwargs = _resolve(params)
    for key in RUN_KEYS:
        kwargs.pop(key, None)
    algo_class = _algo_class(parse_algo(algo)[0])
    _check_known_arguments(algo_class, kwargs)
    return algo_class, kwargs


def check_hyperparams(algo: str, env_id: str, overrides: Optional[Dict[str, Any]] = None) -> None:
    """Raise a ValueError now if ``algo`` would refuse its hyperparameters on ``env_id`` (a yml typo,
    or an override another algo of the same compare takes), before any run starts.

    :param algo: an algo name (``ALGO[:SAMPLER]``).
    :param env_id: the env, whose yml entry applies.
    :param overrides: the ``--hyperparams`` given.
    """
    try:
        _algo_arguments(algo, load_hyperparams(algo, env_id, overrides=overrides))
    except ValueError as error:
        raise ValueError(f"{algo} on {env_id}: {error}") from None


def _check_known_arguments(algo_class: type, kwargs: Dict[str, Any]) -> None:
    """A ValueError naming the hyperparameters ``algo_class`` does not take (a typo in a yml file or
    in ``--hyperparams``), with the closest names, instead of a TypeError from its constructor."""
    parameters: Dict[str, inspect.Parameter] = {}
    for cls in algo_class.__mro__:  # a subclass passing **kwargs on (DiffCatSAC) takes its base's names too
        if cls is object:
            return  # **kwargs all the way up: nothing to check against
        own = inspect.signature(cls.__init__).parameters
        parameters.update(own)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values()):
            break
    unknown = [key for key in kwargs if key not in parameters]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, parameters)}" for key in unknown]
        raise ValueError(f"{algo_class.__name__} has no hyperparameter {', '.join(hints)}")


def load_model(
    algo: str,
    env_id: str,
    params: Dict[str, Any],
    path: str,
    seed: int,
    device: str = "auto",
    tensorboard_log: Optional[str] = None,
    verbose: int = 0,
    vecnormalize_stats: Optional[str] = None,
    trust_file: bool = False,
):
    """Load a model of ``algo`` saved by ``model.save`` and attach a fresh training env, to go on training it.
    Nothing in the files runs as code (:func:`rl_diffcat.serialization.safe_load`) unless ``trust_file``.

    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param env_id: the env id.
    :param params: the hyperparameters the model was built with (for ``n_envs``).
    :param path: the saved ``.zip``.
    :param seed: new seed of the RNGs and the training envs.
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    :param tensorboard_log: TensorBoard folder, or None.
    :param verbose: SB3 verbosity.
    :param vecnormalize_stats: the run's ``VecNormalize`` statistics (for a ``normalize`` entry).
    :param trust_file: also load files that can run code (pickled entries outside the allowlist,
        pickled statistics); only for files you trust.
    :return: the SB3 model, with its training env attached.
    :raises UnsafeFileError: a file that would need ``trust_file``.
    """
    from rl_diffcat.serialization import safe_load

    spec, _ = parse_algo(algo)
    env = make_training_env(env_id, params, seed, vecnormalize_stats, trust_file)
    try:
        model = safe_load(_algo_class(spec), path, env=env, device=device, trust_file=trust_file, tensorboard_log=tensorboard_log, verbose=verbose)
    except Exception:
        env.close()
        raise
    model.set_random_seed(seed)
    return model
