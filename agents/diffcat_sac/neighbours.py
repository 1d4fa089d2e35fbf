"""The critic's values at the actions one factor away from a sampled action: DiffCatSAC's ``dQ/da~``.

Neighbour ``j`` of a joint action ``a`` (column ``j`` is category ``k`` of factor ``i``) is ``a`` with
factor ``i`` switched to ``k`` (``a`` itself where ``k = a_i``). The ``sum(K_i)`` values ``Q(s, .)`` at
these neighbours are the gradient of the critic's multilinear extension at the vertex ``a``.

:func:`neighbour_values_reference` is the definition: build the neighbours' one-hots, call the
critic once. :func:`neighbour_values` computes the same values faster, by the paths below, and
``tests/test_agents_neighbours.py`` holds each of them to the reference:

* only the first layer sees the action, so a neighbour's first pre-activation is ``a``'s plus the
  difference of two weight columns: one first-layer matmul per state instead of one per neighbour;
* **broadcast** (a single factor, or a device in ``OneHotCritic.broadcast_device_types``): every
  column at once, ``a`` minus its factor's current column plus column ``j``;
* **pair table**: ``a`` once, its other neighbours slot by slot, each difference read from a table of
  every ordered pair of categories of a factor (up to ``OneHotCritic.max_pair_table_rows`` rows);
* **gather**: as the pair table, with the two weight columns gathered per state (factors with
  categories in the hundreds);
* **bfloat16** (``matmul_dtype``): the hidden matrix products of any path run on each neighbour's
  difference from ``a`` (:func:`difference_forward`); DiffCatSAC's ``neighbour_dtype="auto"`` picks
  it where the device has it in hardware (:func:`resolve_neighbour_dtype`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import torch as th
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from rl_diffcat.agents.diffcat_sac.policies import OneHotCritic

#: ``neighbour_dtype`` names and the ``matmul_dtype`` of :func:`neighbour_values` they select
NEIGHBOUR_DTYPES = {"float32": None, "bfloat16": th.bfloat16}


def neighbour_values_reference(critic: "OneHotCritic", obs: PyTorchObs, one_hot_actions: th.Tensor) -> Tuple[th.Tensor, ...]:
    """The definition of :func:`neighbour_values`: one critic call on every neighbour's one-hot.

    :return: one ``(batch, sum(K_i))`` tensor per critic, entry ``j`` = ``Q(s, a with factor(j) set to j)``.
    """
    width, device = one_hot_actions.shape[1], one_hot_actions.device
    dims = th.tensor(critic.action_dims, device=device)
    factor = th.repeat_interleave(th.arange(len(critic.action_dims), device=device), dims)  # factor of each column
    same_factor = factor[:, None] == factor[None, :]  # (sum K, sum K)
    eye = th.eye(width, dtype=one_hot_actions.dtype, device=device)
    neighbours = one_hot_actions.unsqueeze(1).masked_fill(same_factor, 0) + eye  # row j: a with factor(j) switched to j
    repeat = lambda tensor: tensor.repeat_interleave(width, dim=0)  # noqa: E731
    obs_rows = {key: repeat(value) for key, value in obs.items()} if isinstance(obs, dict) else repeat(obs)
    return tuple(q.reshape(-1, width) for q in critic(obs_rows, neighbours.reshape(-1, width)))


def neighbour_tables(action_dims: List[int], max_pair_table_rows: int) -> Dict[str, th.Tensor]:
    """Index tables of :func:`neighbour_values`, built once per critic (its non-persistent buffers).

    A neighbour of ``a`` switches one factor ``i`` to another of its categories: slot ``r`` of
    factor ``i`` (``0 <= r < K_i - 1``) is category ``r``, or ``r + 1`` from ``a_i`` on. Its
    first-layer input differs from ``a``'s by ``W[:, k] - W[:, a_i]``, one row of a table of every
    ordered pair ``(a_i, k != a_i)`` of each factor; the table is built only up to
    ``max_pair_table_rows`` pairs (``pair_from`` and ``pair_to`` are empty past it: the gather path).
    The broadcast path reads only ``factor_start`` and ``column_factor`` (the factor of column ``j``).
    """
    pair_table = sum(k * (k - 1) for k in action_dims) <= max_pair_table_rows
    slot_factor, slot_offset, pair_from, pair_to, pair_base, stride = [], [], [], [], [], []
    start, n_pairs = 0, 0
    for factor, k in enumerate(action_dims):
        if pair_table:
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
    starts = th.tensor(action_dims, **long).cumsum(0) - th.tensor(action_dims, **long)
    slot_factor_t = th.tensor(slot_factor, **long)
    return {
        "factor_start": starts,
        "slot_factor": slot_factor_t,
        "slot_offset": th.tensor(slot_offset, **long),
        "slot_column_base": starts[slot_factor_t] + th.tensor(slot_offset, **long),
        "slot_pair_base": th.tensor(pair_base, **long),
        "slot_pair_stride": th.tensor(stride, **long),
        "pair_from": th.tensor(pair_from, **long),
        "pair_to": th.tensor(pair_to, **long),
        "column_factor": th.repeat_interleave(th.arange(len(action_dims)), th.tensor(action_dims, **long)),
    }


def neighbour_values(
    critic: "OneHotCritic", obs: PyTorchObs, one_hot_actions: th.Tensor, matmul_dtype: Optional[th.dtype] = None
) -> Tuple[th.Tensor, ...]:
    """The values of :func:`neighbour_values_reference`, by the fast paths of this module.

    :param critic: the one-hot critic, with the tables of :func:`neighbour_tables` as buffers.
    :param obs: batch of observations.
    :param one_hot_actions: concatenated one-hot actions ``a``, ``(batch, sum(K_i))``.
    :param matmul_dtype: None: float32 throughout. ``th.bfloat16``: the hidden-to-hidden matrix
        products run in bfloat16 on each neighbour's difference from ``a`` (:func:`difference_forward`).
    :return: one ``(batch, sum(K_i))`` tensor per critic.
    """
    features = critic.features(obs)
    one_hot = one_hot_actions.to(features.dtype)
    category = th.stack([block.argmax(-1) for block in th.split(one_hot, critic.action_dims, dim=-1)], dim=-1)
    broadcast = critic.single_factor or features.device.type in critic.broadcast_device_types
    if broadcast:
        current_column = category + critic.factor_start  # (batch, factors)
    else:
        slot_category = category[:, critic.slot_factor]  # (batch, slots): a's category in the slot's factor
        other_column = critic.slot_column_base + (critic.slot_offset >= slot_category).long()  # one-hot column
        if critic.pair_table:
            pair = critic.slot_pair_base + slot_category * critic.slot_pair_stride  # row of the difference table
        else:
            current_column = slot_category + critic.factor_start[critic.slot_factor]
    n_features = features.shape[1]
    values = []
    for q_net in critic.q_networks:
        first, rest = q_net[0], q_net[1:]
        action_weight = first.weight[:, n_features:].T.contiguous()  # (sum K, hidden): row j = column j
        at_a = first(th.cat([features, one_hot], dim=1)).unsqueeze(1)  # (batch, 1, hidden)
        if broadcast:  # every column (a once per factor): one broadcast, no scatter
            without_factor = at_a - action_weight[current_column]  # (batch, factors, hidden)
            if not critic.single_factor:
                without_factor = without_factor[:, critic.column_factor]  # (batch, sum K, hidden)
            values.append(_rest_forward(rest, at_a, without_factor + action_weight, matmul_dtype)[0])
            continue
        if critic.pair_table:
            difference = action_weight[critic.pair_to] - action_weight[critic.pair_from]  # (pairs, hidden)
            switch = F.embedding(pair, difference)  # (batch, slots, hidden)
        else:
            switch = F.embedding(other_column, action_weight) - F.embedding(current_column, action_weight)
        q_others, q_a = _rest_forward(rest, at_a, switch.add_(at_a), matmul_dtype, with_base=True)
        values.append(q_a.expand(-1, one_hot.shape[1]).scatter(1, other_column, q_others))
    return tuple(values)


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
    rows, base = difference_forward(rest, at_a, pre_activation, matmul_dtype)
    return rows.squeeze(-1), base.squeeze(-1)


def difference_forward(layers: nn.Sequential, base: th.Tensor, rows: th.Tensor, matmul_dtype: th.dtype) -> Tuple[th.Tensor, th.Tensor]:
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


def has_fast_bfloat16(device: th.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (AMX tiles on CPU, bf16 CUDA GPUs).

    Without it bfloat16 products are emulated, slower than float32 (BENCHMARKS.md, "Speed of the
    HalfCheetah update").
    """
    if device.type == "cuda":
        return th.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(th.cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def resolve_neighbour_dtype(neighbour_dtype: str, device: th.device) -> str:
    """``"auto"`` becomes ``"bfloat16"`` where ``device`` has fast bfloat16, else ``"float32"``."""
    if neighbour_dtype != "auto":
        return neighbour_dtype
    return "bfloat16" if has_fast_bfloat16(th.device(device)) else "float32"
