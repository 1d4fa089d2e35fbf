"""Loading saved files without running code from them.

SB3 writes a model ``.zip`` whose ``data`` entry is JSON with the attributes JSON cannot hold
(spaces, the policy class, schedules) cloudpickled inside it, and it pickles replay buffers and
``VecNormalize`` statistics whole. Unpickling runs whatever a file says, so a crafted file runs
code on load. Here:

* model files: every cloudpickled entry of ``data`` is read by :class:`RestrictedUnpickler`, which
  admits only the classes and functions genuine files hold (:func:`is_allowed`) and refuses the
  rest with :class:`UnsafeFileError`. The entries it read are handed to SB3's ``load`` as
  ``custom_objects``, so SB3 itself unpickles nothing; its ``.pth`` members are read with
  ``torch.load(weights_only=True)`` already. Use :func:`safe_load` for any SB3 class; our agents'
  ``load`` does the same (:class:`SafeLoadMixin`).
* replay buffers and ``VecNormalize`` statistics: written as ``.npz`` files (arrays, plus one JSON
  string for the scalars and the class name) and read with ``np.load(allow_pickle=False)``
  (:func:`write_replay_buffer`, :func:`read_replay_buffer`, :func:`save_vec_normalize`,
  :func:`load_vec_normalize`).

Files that need more, such as pickle files from SB3's own ``save_replay_buffer`` and
``VecNormalize.save``, load only with ``trust_file=True``.
"""

from __future__ import annotations

import base64
import functools
import importlib
import inspect
import io
import json
import os
import pathlib
import pickle
import warnings
import zipfile
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, pathlib.Path, io.BufferedIOBase]

TRUST_HINT = "if you trust where the file came from, pass trust_file=True (on the command line: --trust-file)"

# What genuine files reference by name, found by saving models of our agents, of PPO with our
# policies and of SB3/sb3-contrib's algorithms on every kind of space (tests/test_safe_loading.py):
# numpy's array, scalar and random-generator reconstructors (numpy 1 spells numpy._core numpy.core),
# the containers of the episode buffers and dict observations, SB3's schedules and train frequency.
ALLOWED_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "collections.deque",
        "numpy.dtype",
        "numpy.ndarray",
        *(
            f"{core}.{name}"
            for core in ("numpy.core", "numpy._core")
            for name in ("numeric._frombuffer", "multiarray.scalar", "multiarray._reconstruct")
        ),
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pcg64.PCG64",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "stable_baselines3.common.utils.ConstantSchedule",
        "stable_baselines3.common.utils.FloatSchedule",
        "stable_baselines3.common.utils.LinearSchedule",
        "stable_baselines3.common.type_aliases.TrainFreq",
        "stable_baselines3.common.type_aliases.TrainFrequencyUnit",
        "rl_zoo3.utils.SimpleLinearSchedule",  # rl-zoo3's lin_<x> schedules
    }
)

OUR_PACKAGES = ("stable_baselines3.", "sb3_contrib.", "rl_diffcat.")

# Classes admitted by family: (where the class is defined, the class it derives from). A family is
# a kind of class a genuine file names (its spaces, its policy and buffer classes, the classes of
# its policy_kwargs), whichever class of that kind a user picked.
ALLOWED_FAMILIES: Tuple[Tuple[Tuple[str, ...], str], ...] = (
    (("gymnasium.spaces.",), "gymnasium.spaces:Space"),
    (OUR_PACKAGES, "stable_baselines3.common.policies:BasePolicy"),
    (OUR_PACKAGES, "stable_baselines3.common.torch_layers:BaseFeaturesExtractor"),
    (OUR_PACKAGES, "stable_baselines3.common.buffers:BaseBuffer"),  # replay_buffer_class, rollout_buffer_class
    (("torch.nn.modules.activation",), "torch.nn:Module"),  # policy_kwargs' activation_fn
    (("torch.optim.",), "torch.optim:Optimizer"),  # policy_kwargs' optimizer_class
)

# Entries that hold a learning-rate or clip-range schedule. A lambda given there is saved as a
# cloudpickled function: code, which is not run. The entry takes the class's default instead.
SCHEDULE_KEYS = ("learning_rate", "lr_schedule", "clip_range", "clip_range_vf")

NPZ_META = "__rl_diffcat__"  # the .npz member holding the JSON description
REPLAY_BUFFER_FORMAT = "rl_diffcat.replay_buffer"
VEC_NORMALIZE_FORMAT = "rl_diffcat.vec_normalize"
FORMAT_VERSION = 1
DATA_SUFFIX = ".npz"


class UnsafeFileError(pickle.UnpicklingError, ValueError):
    """A file that would run code, or load a class outside the allowlist, if it were loaded.

    :param message: what was refused, and how to load the file anyway.
    :param refused: the global refused (``module.qualname``), when an unpickler refused one.
    """

    def __init__(self, message: str, refused: Optional[str] = None) -> None:
        super().__init__(message)
        self.refused = refused


def _resolve(module: str, name: str) -> Any:
    """``module.name`` (``name`` may be a dotted qualname), importing ``module``."""
    return functools.reduce(getattr, name.split("."), importlib.import_module(module))


@functools.lru_cache(maxsize=1024)
def is_allowed(module: str, name: str) -> bool:
    """Whether a file may reference the global ``module.name``: one of :data:`ALLOWED_GLOBALS`, or a
    class of one of :data:`ALLOWED_FAMILIES`. Only modules of those families are imported to decide.

    :param module: the module the pickle names.
    :param name: the (qualified) name in it.
    """
    if f"{module}.{name}" in ALLOWED_GLOBALS:
        return True
    for prefixes, base_path in ALLOWED_FAMILIES:
        if not any(module == prefix.rstrip(".") or module.startswith(prefix) for prefix in prefixes):
            continue
        try:
            candidate = _resolve(module, name)
            base = _resolve(*base_path.split(":"))
        except (ImportError, AttributeError):
            continue
        if isinstance(candidate, type) and issubclass(candidate, base):
            return True
    return False


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals :func:`is_allowed` admits (Python's
    documented way to restrict unpickling: override ``find_class``).

    :param file: the pickle stream.
    :param where: names the file (and entry) in the error.
    """

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if is_allowed(module, name):
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"{self.where} would load {module}.{name}, which rl-diffcat does not load from a file it cannot trust "
            f"(unpickling it can run code); {TRUST_HINT}",
            refused=f"{module}.{name}",
        )


def restricted_loads(data: bytes, where: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    :param data: a pickle (or cloudpickle) byte string.
    :param where: names the source in errors.
    """
    return RestrictedUnpickler(io.BytesIO(data), where).load()


# -- model files -------------------------------------------------------------------------------------
def _read_bytes(path: PathLike, suffix: str) -> bytes:
    """The bytes of ``path`` (a path, or a file opened for reading); as SB3 does, ``path + suffix``
    when ``path`` does not exist."""
    if hasattr(path, "read"):
        return path.read()  # type: ignore[union-attr]
    path = str(path)
    if not os.path.exists(path) and os.path.exists(f"{path}.{suffix}"):
        path = f"{path}.{suffix}"
    with open(path, "rb") as file:
        return file.read()


def _default_of(algo_class: type, key: str) -> Any:
    """The default of ``algo_class``'s constructor argument ``key`` (None without one): what a
    schedule entry that holds a function is replaced by."""
    for cls in algo_class.__mro__:
        parameter = inspect.signature(cls.__init__).parameters.get(key) if "__init__" in vars(cls) else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None  # lr_schedule: _setup_model rebuilds it from learning_rate


def restricted_model_data(raw: bytes, algo_class: type, custom_objects: Optional[Dict[str, Any]], where: str) -> Dict[str, Any]:
    """Read every cloudpickled entry of the ``data`` of a model ``.zip`` with
    :class:`RestrictedUnpickler`, to hand to SB3's ``load`` as ``custom_objects``.

    A schedule entry (:data:`SCHEDULE_KEYS`) that holds a pickled function (a lambda given as
    ``learning_rate``) is not run: it takes ``algo_class``'s default, with a warning.

    :param raw: the bytes of the ``.zip``.
    :param algo_class: the class loading it.
    :param custom_objects: the caller's replacements: those entries are not read.
    :param where: names the file in errors.
    :return: entry name -> object, for every cloudpickled entry not in ``custom_objects``.
    :raises UnsafeFileError: an entry references something outside the allowlist.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            data = json.loads(archive.read("data").decode()) if "data" in archive.namelist() else {}
    except zipfile.BadZipFile:
        raise ValueError(f"{where} is not a saved model (not a zip file)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} is not a saved model (its data is not a JSON object)")
    objects: Dict[str, Any] = {}
    skipped = []
    for key, item in data.items():
        if (custom_objects and key in custom_objects) or not (isinstance(item, dict) and ":serialized:" in item):
            continue
        entry = f"{where} (entry {key!r})"
        try:
            objects[key] = restricted_loads(base64.b64decode(str(item[":serialized:"]).encode()), entry)
        except UnsafeFileError as error:
            if key not in SCHEDULE_KEYS or not (error.refused or "").startswith("cloudpickle."):
                raise  # only a schedule may be a function (cloudpickle rebuilds one from its code)
            objects[key] = _default_of(algo_class, key)
            skipped.append(key)
    if skipped:
        defaults = {key: objects[key] for key in skipped if objects[key] is not None}
        warnings.warn(
            f"{where}: {', '.join(skipped)} hold pickled functions, which were not run: they take "
            f"{algo_class.__name__}'s defaults {defaults}. To train on with the saved schedule, pass it in "
            f"custom_objects, or trust_file=True if you trust the file.",
            UserWarning,
            stacklevel=3,
        )
    return objects


def restricted_load_arguments(algo_class: type, path: PathLike, custom_objects: Optional[Dict[str, Any]]) -> Tuple[io.BytesIO, Dict[str, Any]]:
    """What to call SB3's ``load`` with so that it unpickles nothing: the file's bytes (read once,
    so what was checked is what loads) and ``custom_objects`` holding every pickled entry.

    :param algo_class: the class loading the file.
    :param path: the ``.zip`` (the suffix may be left out), or a file opened for reading.
    :param custom_objects: the caller's replacements (they win).
    """
    raw = _read_bytes(path, "zip")
    objects = restricted_model_data(raw, algo_class, custom_objects, str(path))
    return io.BytesIO(raw), {**objects, **(custom_objects or {})}


def safe_load(algo_class: type, path: PathLike, *args: Any, trust_file: bool = False, custom_objects: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
    """``algo_class.load(path, ...)`` for any SB3 algorithm class, without running code from the
    file: its pickled entries are read by :class:`RestrictedUnpickler`.

    :param algo_class: an SB3 algorithm class (``PPO``, ``MaskablePPO``, ``DiffCatSAC``, ...).
    :param path: the saved ``.zip`` (the suffix may be left out), or a file opened for reading.
    :param args: passed on to ``algo_class.load`` (``env``, ``device``, ...).
    :param trust_file: load as SB3 does, unpickling everything (only for files you trust).
    :param custom_objects: SB3's replacements of saved entries (not read from the file).
    :param kwargs: passed on to ``algo_class.load``.
    :return: the loaded model.
    :raises UnsafeFileError: the file references something outside the allowlist.
    """
    if issubclass(algo_class, SafeLoadMixin):
        return algo_class.load(path, *args, custom_objects=custom_objects, trust_file=trust_file, **kwargs)
    if not trust_file:
        path, custom_objects = restricted_load_arguments(algo_class, path, custom_objects)
    return algo_class.load(path, *args, custom_objects=custom_objects, **kwargs)


# -- data-only files: .npz with a JSON description ------------------------------------------------
def _to_json(value: Any, name: str) -> Any:
    """``value`` as JSON, with tuples, dicts and numpy scalars tagged so they come back as they were."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, list):
        return [_to_json(item, name) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [_to_json(item, name) for item in value]}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"dict": {key: _to_json(item, name) for key, item in value.items()}}
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return {"numpy": value.dtype.str, "value": value.item()}
    raise ValueError(f"{name} holds a {type(value).__module__}.{type(value).__qualname__}, which the data-only format cannot store")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_from_json(item) for item in value["tuple"])
        if "dict" in value:
            return {key: _from_json(item) for key, item in value["dict"].items()}
        if "numpy" not in value:
            raise ValueError(f"a data-only file holds {value!r}, which is none of the forms it writes")
        dtype = np.dtype(value["numpy"])
        if dtype.kind not in "biufc":
            raise ValueError(f"a numpy scalar of dtype {dtype} in a data-only file")
        return dtype.type(value["value"])
    return value


def _is_pickle(path: PathLike) -> bool:
    """Whether the file at ``path`` is not an ``.npz`` (zip) file: an old pickle."""
    if hasattr(path, "read"):
        start = path.tell()  # type: ignore[union-attr]
        magic = path.read(4)  # type: ignore[union-attr]
        path.seek(start)  # type: ignore[union-attr]
    else:
        with open(path, "rb") as file:
            magic = file.read(4)
    return magic != b"PK\x03\x04"


def _data_path(path: PathLike, writing: bool) -> PathLike:
    """``path``, with ``.npz`` added when it has no suffix (as SB3 adds ``.pkl``); for reading, the
    first of ``path``, ``path.npz`` and ``path.pkl`` that exists."""
    if hasattr(path, "read") or hasattr(path, "write"):
        return path
    path = str(path)
    if writing:
        return path + DATA_SUFFIX if not pathlib.Path(path).suffix else path
    for candidate in (path, path + DATA_SUFFIX, path + ".pkl"):
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"no file at {path}")


def _write_npz(path: PathLike, meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
    """``arrays`` and the JSON ``meta`` as one ``.npz`` file at exactly ``path`` (given an open
    file, ``np.savez`` adds no suffix)."""
    members = {NPZ_META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}  # UTF-8 bytes
    if hasattr(path, "write"):
        np.savez(path, **members)
        return
    os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
    with open(path, "wb") as file:
        np.savez(file, **members)


def _read_npz(path: PathLike, kind: str) -> Tuple[Dict[str, Any], Any]:
    """The JSON description and the arrays (an ``NpzFile``, read without pickle) of a data-only file."""
    npz = np.load(path, allow_pickle=False)
    try:
        meta = json.loads(npz[NPZ_META].tobytes().decode())
    except (KeyError, ValueError, AttributeError) as error:
        raise ValueError(f"{path} is not a {kind} file written by rl-diffcat ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ValueError(f"{path} is not a {kind} file written by rl-diffcat (it says {meta.get('format') if isinstance(meta, dict) else meta!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} is a {kind} file of version {meta.get('version')}; this rl-diffcat reads version {FORMAT_VERSION}")
    return meta, npz


def _refuse_pickle(path: PathLike, what: str, resave: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"{path} is a pickle file ({what} as SB3 writes it, or as rl-diffcat wrote it before its data-only format): loading it can run code "
        f"from it; {TRUST_HINT}. Saving it again ({resave}) writes the data-only format."
    )


def _class_name(cls: type) -> Dict[str, str]:
    return {"module": cls.__module__, "qualname": cls.__qualname__}


def _allowed_class(named: Any, base: type, where: str) -> type:
    """The class a data-only file names (``{"module": ..., "qualname": ...}``), if the allowlist
    admits it and it derives from ``base``."""
    module, name = (str(named.get(key)) for key in ("module", "qualname")) if isinstance(named, dict) else ("?", repr(named))
    cls = _resolve(module, name) if is_allowed(module, name) else None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UnsafeFileError(f"{where} names the class {module}.{name}, which rl-diffcat does not load from a file; {TRUST_HINT}")
    return cls


# -- replay buffers ------------------------------------------------------------------------------------
SPACE_ATTRIBUTES = ("observation_space", "action_space", "device")  # taken from the model on load


def write_replay_buffer(buffer: Any, path: PathLike) -> PathLike:
    """Save an SB3 replay buffer without pickle: its arrays in an ``.npz`` file, its other
    attributes (positions, sizes, flags) and class name as JSON. While the buffer is not full, only
    its filled rows are written (one more with ``optimize_memory_usage``, where the last next
    observation sits), with the value the rest holds: a 1M-transition buffer 20k steps into a run
    is 2% full.

    :param buffer: a ``ReplayBuffer`` (or ``DictReplayBuffer``, ``NStepReplayBuffer``, our masked
        buffers): any buffer whose attributes are arrays, dicts of arrays and plain values.
    :param path: the file (``.npz`` is added when it has no suffix), or a file opened for writing.
    :return: the path written.
    :raises ValueError: an attribute the format cannot hold (an object array, an env).
    """
    capacity = buffer.buffer_size
    rows = buffer.pos + 1 if not buffer.full and buffer.pos + 1 < capacity else None
    arrays: Dict[str, np.ndarray] = {}

    def put(key: str, array: np.ndarray) -> Dict[str, Any]:
        where = f"{type(buffer).__name__}.{key}"
        if array.dtype.hasobject:
            raise ValueError(f"{where} holds Python objects, which the data-only format cannot store")
        spec: Dict[str, Any] = {"key": key}
        if rows is not None and array.ndim >= 1 and array.shape[0] == capacity:
            rest = array[rows:]
            first = rest.flat[0] if rest.size else 0
            # the unfilled rows hold one value (zeros; True for masks); reductions, not a temporary per element
            if not first:
                uniform = not rest.any()
            else:
                uniform = bool(rest.all()) if rest.dtype == bool else bool((rest == first).all())
            if uniform:
                spec.update(rows=rows, capacity=capacity, fill=first.item() if isinstance(first, np.generic) else first)
                array = array[:rows]
        arrays[key] = array
        return spec

    attributes: Dict[str, Any] = {}
    layout: Dict[str, Any] = {}
    for name, value in vars(buffer).items():
        if name in SPACE_ATTRIBUTES:
            continue
        if isinstance(value, np.ndarray):
            layout[name] = put(name, value)
        elif isinstance(value, dict) and value and all(isinstance(item, np.ndarray) for item in value.values()):
            layout[name] = {"dict": [[key, put(f"{name}.{index}", item)] for index, (key, item) in enumerate(value.items())]}
        else:
            attributes[name] = _to_json(value, f"{type(buffer).__name__}.{name}")
    meta = {"format": REPLAY_BUFFER_FORMAT, "version": FORMAT_VERSION, "class": _class_name(type(buffer)), "attributes": attributes, "arrays": layout}
    path = _data_path(path, writing=True)
    _write_npz(path, meta, arrays)
    return path


def _stored_array(npz: Any, spec: Dict[str, Any]) -> np.ndarray:
    array = npz[spec["key"]]
    if "rows" not in spec:
        return array
    full = np.zeros((spec["capacity"], *array.shape[1:]), dtype=array.dtype)  # np.zeros: pages untouched until written
    full[: spec["rows"]] = array
    if spec["fill"]:
        full[spec["rows"] :] = spec["fill"]
    return full


def read_replay_buffer(path: PathLike, observation_space: Any, action_space: Any, device: Any = "cpu", trust_file: bool = False) -> Any:
    """Load a replay buffer written by :func:`write_replay_buffer`, without pickle.

    :param path: the file (``path.npz``, then the old ``path.pkl``, are tried when ``path`` does not
        exist), or a file opened for reading.
    :param observation_space: the model's observation space (the buffer's, not stored in the file).
    :param action_space: the model's action space.
    :param device: the device the buffer hands its samples to.
    :param trust_file: also load an old pickle file (SB3's ``save_replay_buffer``), which can run code.
    :return: the buffer.
    :raises UnsafeFileError: a pickle file without ``trust_file``, or a buffer class outside the allowlist.
    """
    from stable_baselines3.common.buffers import ReplayBuffer

    path = _data_path(path, writing=False)
    if _is_pickle(path):
        if not trust_file:
            raise _refuse_pickle(path, "a replay buffer", "model.save_replay_buffer")
        from stable_baselines3.common.save_util import load_from_pkl

        buffer = load_from_pkl(path)
        if not hasattr(buffer, "handle_timeout_termination"):  # SB3 < 2.1, as SB3's load_replay_buffer does
            buffer.handle_timeout_termination = False
            buffer.timeouts = np.zeros_like(buffer.dones)
        buffer.device = device
        return buffer
    meta, npz = _read_npz(path, REPLAY_BUFFER_FORMAT)
    with npz:
        cls = _allowed_class(meta.get("class"), ReplayBuffer, str(path))
        state = {name: _from_json(value) for name, value in meta["attributes"].items()}
        for name, spec in meta["arrays"].items():
            if "dict" in spec:
                state[name] = {key: _stored_array(npz, item) for key, item in spec["dict"]}
            else:
                state[name] = _stored_array(npz, spec)
    buffer = cls.__new__(cls)  # as unpickling rebuilds an object: no constructor, its attributes set
    buffer.__dict__.update(state, observation_space=observation_space, action_space=action_space, device=device)
    return buffer


def load_replay_buffer_into(model: Any, path: PathLike, trust_file: bool = False, truncate_last_traj: bool = True) -> None:
    """SB3's ``OffPolicyAlgorithm.load_replay_buffer`` on :func:`read_replay_buffer`: set
    ``model.replay_buffer`` from ``path``.

    :param model: an off-policy SB3 model.
    :param path: a file written by :func:`write_replay_buffer` (or, with ``trust_file``, by SB3).
    :param trust_file: also load an old pickle file, which can run code.
    :param truncate_last_traj: ``HerReplayBuffer`` only, as in SB3.
    """
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    buffer = read_replay_buffer(path, model.observation_space, model.action_space, model.device, trust_file)
    if not isinstance(buffer, ReplayBuffer):
        raise ValueError(f"{path} holds a {type(buffer).__name__}, not a ReplayBuffer")
    model.replay_buffer = buffer
    if isinstance(buffer, HerReplayBuffer):  # only from a trusted pickle: HER's infos are Python objects
        buffer.set_env(model.env)
        if truncate_last_traj:
            buffer.truncate_last_trajectory()


# -- VecNormalize statistics -------------------------------------------------------------------------
VEC_NORMALIZE_ARGUMENTS = ("training", "norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys")


def save_vec_normalize(normalizer: Any, path: PathLike) -> PathLike:
    """Save what ``VecNormalize.load`` restores, without pickle: the running mean, variance and
    count of the observations (per key for dict observations) and of the returns as arrays, and
    the normalizer's arguments (clips, ``gamma``, ``epsilon``, ``norm_obs``/``norm_reward``,
    ``norm_obs_keys``, ``training``) as JSON.

    :param normalizer: a ``VecNormalize``.
    :param path: the file (``.npz`` is added when it has no suffix), or a file opened for writing.
    :return: the path written.
    """
    arrays: Dict[str, np.ndarray] = {}

    def put(prefix: str, rms: Any) -> None:
        arrays[f"{prefix}.mean"], arrays[f"{prefix}.var"] = rms.mean, rms.var
        arrays[f"{prefix}.count"] = np.asarray(rms.count, dtype=np.float64)

    obs_rms = getattr(normalizer, "obs_rms", None)
    obs_keys = None
    if isinstance(obs_rms, dict):
        obs_keys = list(obs_rms)
        for index, rms in enumerate(obs_rms.values()):
            put(f"obs_rms.{index}", rms)
    elif obs_rms is not None:
        put("obs_rms", obs_rms)
    put("ret_rms", normalizer.ret_rms)
    meta = {
        "format": VEC_NORMALIZE_FORMAT,
        "version": FORMAT_VERSION,
        "class": _class_name(type(normalizer)),
        "arguments": {name: _to_json(getattr(normalizer, name), f"VecNormalize.{name}") for name in VEC_NORMALIZE_ARGUMENTS},
        "obs_rms": None if obs_rms is None else {"keys": obs_keys},
    }
    path = _data_path(path, writing=True)
    _write_npz(path, meta, arrays)
    return path


def load_vec_normalize(path: PathLike, venv: Any, trust_file: bool = False) -> Any:
    """``VecNormalize.load`` without pickle: a ``VecNormalize`` around ``venv`` with the arguments
    and statistics saved by :func:`save_vec_normalize`.

    :param path: the file (``path.npz``, then the old ``path.pkl``, are tried when ``path`` does not
        exist), or a file opened for reading.
    :param venv: the vectorized env to wrap.
    :param trust_file: also load a pickle file (SB3's ``VecNormalize.save``), which can run code.
    :return: the normalizer.
    :raises UnsafeFileError: a pickle file without ``trust_file``.
    :raises ValueError: statistics whose shapes do not fit ``venv``'s observations.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    path = _data_path(path, writing=False)
    if _is_pickle(path):
        if not trust_file:
            raise _refuse_pickle(path, "VecNormalize statistics", "rl_diffcat.serialization.save_vec_normalize")
        return VecNormalize.load(str(path), venv)
    meta, npz = _read_npz(path, VEC_NORMALIZE_FORMAT)
    if meta.get("class") != _class_name(VecNormalize):
        raise ValueError(f"{path} holds the statistics of {meta.get('class')}, not of SB3's VecNormalize")
    arguments = {name: _from_json(value) for name, value in meta["arguments"].items() if name in VEC_NORMALIZE_ARGUMENTS}
    normalizer = VecNormalize(venv, **arguments)
    with npz:

        def restore(prefix: str, rms: Any) -> None:
            mean, var = npz[f"{prefix}.mean"], npz[f"{prefix}.var"]
            if mean.shape != rms.mean.shape or var.shape != rms.var.shape:
                raise ValueError(f"{path} holds statistics of shape {mean.shape} for observations of shape {rms.mean.shape}")
            rms.mean, rms.var, rms.count = mean, var, float(npz[f"{prefix}.count"])

        if meta["obs_rms"] is not None:
            keys = meta["obs_rms"]["keys"]
            if keys is None:
                restore("obs_rms", normalizer.obs_rms)
            else:
                if not isinstance(normalizer.obs_rms, dict) or list(normalizer.obs_rms) != keys:
                    raise ValueError(f"{path} holds statistics of the observation keys {keys}, not of this env's")
                for index, key in enumerate(keys):
                    restore(f"obs_rms.{index}", normalizer.obs_rms[key])
        restore("ret_rms", normalizer.ret_rms)
    return normalizer


# -- our agents ----------------------------------------------------------------------------------------
class SafeLoadMixin:
    """What our agents add to SB3's ``OffPolicyAlgorithm``: ``load`` through
    :class:`RestrictedUnpickler`, and replay buffers in the data-only format. Put it first among
    the bases (``class CategoricalSAC(SafeLoadMixin, OffPolicyAlgorithm)``)."""

    @classmethod
    def load(  # type: ignore[no-untyped-def]
        cls,
        path: PathLike,
        env: Any = None,
        device: Any = "auto",
        custom_objects: Optional[Dict[str, Any]] = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        trust_file: bool = False,
        **kwargs: Any,
    ):
        """SB3's ``load``, which never runs code from the file: its pickled entries are read by
        :class:`RestrictedUnpickler`, which refuses anything but what genuine files hold.

        :param path: the saved ``.zip`` (the suffix may be left out), or a file opened for reading.
        :param env: the env to run the model on (None: only to predict).
        :param device: ``auto``, ``cpu`` or ``cuda``.
        :param custom_objects: saved entries to replace (not read from the file).
        :param print_system_info: print the system info saved in the file.
        :param force_reset: reset the env before training on.
        :param trust_file: load as SB3 does, unpickling everything (only for files you trust).
        :param kwargs: attributes to change on the loaded model.
        :raises UnsafeFileError: the file references something outside the allowlist.
        """
        if not trust_file:
            path, custom_objects = restricted_load_arguments(cls, path, custom_objects)
        return super().load(  # type: ignore[misc]
            path, env=env, device=device, custom_objects=custom_objects, print_system_info=print_system_info, force_reset=force_reset, **kwargs
        )

    def save_replay_buffer(self, path: PathLike) -> None:
        """Save the replay buffer in the data-only format (:func:`write_replay_buffer`).

        :param path: the file (``.npz`` is added when it has no suffix), or a file opened for writing.
        """
        if getattr(self, "replay_buffer", None) is None:
            raise ValueError("this model has no replay buffer to save")
        write_replay_buffer(self.replay_buffer, path)

    def load_replay_buffer(self, path: PathLike, truncate_last_traj: bool = True, trust_file: bool = False) -> None:
        """Load a replay buffer saved by :meth:`save_replay_buffer`, without pickle.

        :param path: the file, or a file opened for reading.
        :param truncate_last_traj: ``HerReplayBuffer`` only, as in SB3.
        :param trust_file: also load an old pickle file (SB3's format), which can run code.
        """
        load_replay_buffer_into(self, path, trust_file, truncate_last_traj)
