"""``torch.distributions`` wrappers around the samplers: one categorical factor, or many.

``DiffusionCategorical`` behaves like :class:`torch.distributions.OneHotCategorical` (same
``log_prob``, ``entropy``, ``mode``, shapes) but has ``rsample``: a hard one-hot whose gradient
flows through the chosen pathwise sampler (ReDGE by default). ``MultiDiffusionCategorical`` is
the product of independent factors with different sizes, the law of a ``MultiDiscrete`` action.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints, kl_divergence, register_kl

from rl_diffcat.samplers import make_sampler, one_hot_like, prepare_logits, sample_index, sample_one_hot, valid_actions


#: Logits beyond this magnitude are normalized after moving the largest to 0 (see DiffusionCategorical).
HUGE_LOGIT = 1e30


class DiffusionCategorical(Distribution):
    """Categorical distribution over one-hot vectors with a pathwise ``rsample``.

    :param probs: event probabilities, shape ``(..., K)`` (normalized along the last dim).
    :param logits: unnormalized log-probabilities, shape ``(..., K)``; give exactly one of the two.
    :param mask: bool tensor broadcastable to ``(..., K)``; False = invalid action (never sampled,
        zero probability, zero gradient). ``-inf`` logits are masked too.
    :param n_steps: ReDGE number of noise levels (>= 2); ignored by samplers without it.
    :param t_1: ReDGE stopping level in [1e-4, 0.9999); ignored by samplers without it.
    :param sampler: name in :data:`rl_diffcat.samplers.SAMPLERS`.
    :param tau: temperature in [1e-4, 1e4] of ``gumbel_softmax``/``reinmax``/``reindge``.
    :param generator: optional ``torch.Generator`` used by ``rsample``/``sample``.
    :param validate_args: check parameters (NaN, masks) and ``log_prob`` values.
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_rsample = True
    has_enumerate_support = True

    def __init__(
        self,
        probs: Optional[Tensor] = None,
        logits: Optional[Tensor] = None,
        mask: Optional[Tensor] = None,
        n_steps: int = 5,
        t_1: float = 0.5,
        sampler: str = "redge",
        tau: float = 1.0,
        generator: Optional[torch.Generator] = None,
        validate_args: Optional[bool] = None,
    ) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("give exactly one of `probs` or `logits`")
        if probs is not None:
            if validate_args is not False and ((probs < 0).any() or torch.isnan(probs).any()):
                raise ValueError("probs must be non-negative and not NaN")
            # -inf where a prob is 0 (a masked action): log(0) would give the other probs NaN gradients
            logits = torch.where(probs > 0, probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), float("-inf"))
        check = Distribution._validate_args if validate_args is None else validate_args
        masked = prepare_logits(logits, mask, validate_args=check)
        if logits.dtype == torch.float64:
            # normalized at the input's precision, not the samplers' float32 (where a valid logit 1e39
            # below the largest is -inf: its log-probability is finite in float64)
            masked = logits if mask is None else logits.masked_fill(~mask.to(logits.device), float("-inf"))
        # torch's Categorical normalizes as logits - logsumexp(logits); the same arithmetic keeps SB3's
        # PPO with the drop-in policy bit-identical to its own. Only where the largest valid logit
        # is beyond HUGE_LOGIT, where log(K) is below its resolution ([3e38, 3e38] would get
        # log-probabilities [0, 0]), does it move to 0 first (subtracting 0 elsewhere changes no bit).
        top = masked.amax(-1, keepdim=True).detach()
        masked = masked - torch.where(top.abs() > HUGE_LOGIT, top, torch.zeros_like(top))
        self.logits = (masked - masked.logsumexp(-1, keepdim=True)).to(logits.dtype)
        # A log-probability below the dtype's range is -inf (float16's -6e4 - 6e4, float32's -3e38 - 3e38):
        # that action has probability 0 too (kept valid, its entropy term was 0 * -inf = NaN).
        self.mask = valid_actions(self.logits)
        self.sampler, self.n_steps, self.t_1, self.tau = sampler, n_steps, t_1, tau
        self.generator = generator
        self._sample_fn = make_sampler(sampler, n_steps=n_steps, t_1=t_1, tau=tau)
        super().__init__(self.logits.shape[:-1], self.logits.shape[-1:], validate_args=False)
        self._validate_args = bool(check)

    # -- parameters ---------------------------------------------------------------------------
    @property
    def probs(self) -> Tensor:
        """Event probabilities (zero at masked actions)."""
        return self.logits.softmax(-1)

    @property
    def param_shape(self) -> torch.Size:
        return self.logits.shape

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        probs = self.probs
        return probs * (1 - probs)

    @property
    def mode(self) -> Tensor:
        """The most likely one-hot (masked actions are never chosen)."""
        return one_hot_like(self.logits, self.logits.argmax(-1))

    def _knobs(self) -> dict:
        return dict(n_steps=self.n_steps, t_1=self.t_1, sampler=self.sampler, tau=self.tau)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> "DiffusionCategorical":
        shape = torch.Size(batch_shape) + self.event_shape
        new = type(self)(
            logits=self.logits.expand(shape),
            mask=self.mask.expand(shape),
            generator=self.generator,
            validate_args=False,  # the logits were checked already
            **self._knobs(),
        )
        new._validate_args = self._validate_args  # as torch's expand: the values checks stay as they were
        return new

    # -- sampling -----------------------------------------------------------------------------
    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Hard one-hot samples of shape ``sample_shape + batch_shape + (K,)`` with pathwise gradient."""
        shape = self._extended_shape(torch.Size(sample_shape))
        return self._sample_fn(
            self.logits.expand(shape),
            hard=True,
            mask=self.mask.expand(shape),
            generator=self.generator,
            validate_args=False,
        )

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Hard one-hot samples from the categorical itself (exact law, no gradient)."""
        shape = self._extended_shape(torch.Size(sample_shape))
        with torch.no_grad():
            return sample_one_hot(self.probs.float().expand(shape), self.generator).to(self.logits.dtype)

    def sample_index(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Action indices of :meth:`sample` (the same random draws), without building the one-hot:
        what acting needs, a few kernel launches fewer per environment step."""
        shape = self._extended_shape(torch.Size(sample_shape))
        return sample_index(self.probs.float().expand(shape), self.generator)

    def rsample_relaxed(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """The sampler's soft relaxation (``hard=False``), e.g. the ReDGE soft sample."""
        shape = self._extended_shape(torch.Size(sample_shape))
        return self._sample_fn(
            self.logits.expand(shape), hard=False, mask=self.mask.expand(shape),
            generator=self.generator, validate_args=False,
        )

    # -- densities ----------------------------------------------------------------------------
    def log_prob(self, value: Tensor) -> Tensor:
        """Log-probability of one-hot ``value`` (``-inf`` at masked actions)."""
        if self._validate_args:
            self._validate_sample(value)
        logits, value = torch.broadcast_tensors(self.logits, value)
        return torch.where(value > 0, logits, torch.zeros_like(logits)).sum(-1)

    def entropy(self) -> Tensor:
        """Shannon entropy ``-sum_k p_k log p_k`` (masked actions contribute 0)."""
        # Zero the masked logits before the product: 0 * -inf would be NaN in the backward pass.
        return -(self.probs * self.logits.masked_fill(~self.mask, 0.0)).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self.event_shape[0]
        values = torch.eye(n, dtype=self.logits.dtype, device=self.logits.device)
        values = values.view((n,) + (1,) * len(self.batch_shape) + (n,))
        return values.expand((n,) + self.batch_shape + (n,)) if expand else values


class MultiDiffusionCategorical(Distribution):
    """Product of independent :class:`DiffusionCategorical` factors of sizes ``action_dims``.

    Values are the factors' one-hots concatenated along the last dim, shape ``(..., sum(K_i))``;
    ``log_prob`` and ``entropy`` sum over factors.

    Consecutive factors of the same size form one block, a single :class:`DiffusionCategorical`
    over logits of shape ``(..., n, K)``. That block is sampled in one sampler call rather than
    ``n``. ``MultiBinary(n)`` is one block of ``K = 2``, and six joints with 11 bins each are one block.

    :param logits: concatenated factor logits ``(..., sum(action_dims))``, or a list of per-factor
        logits ``(..., K_i)`` (then ``action_dims`` may be omitted).
    :param action_dims: the factor sizes ``K_i``.
    :param mask: optional bool tensor shaped like the concatenated logits.
    :param kwargs: sampler settings passed to every factor (see :class:`DiffusionCategorical`).
    """

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(
        self,
        logits: Union[Tensor, Sequence[Tensor]],
        action_dims: Optional[Sequence[int]] = None,
        mask: Optional[Tensor] = None,
        **kwargs,
    ) -> None:
        if not isinstance(logits, Tensor):
            parts = list(logits)
            dims = [int(p.shape[-1]) for p in parts]
            if action_dims is not None and list(action_dims) != dims:
                raise ValueError(f"action_dims {list(action_dims)} do not match the logits' sizes {dims}")
            action_dims, logits = dims, torch.cat(parts, dim=-1)
        if action_dims is None or len(action_dims) == 0 or min(int(k) for k in action_dims) < 1:
            raise ValueError(f"action_dims must be a non-empty list of sizes >= 1, got {action_dims!r}")
        self.action_dims = [int(k) for k in action_dims]
        if logits.shape[-1] != sum(self.action_dims):
            raise ValueError(
                f"logits have {logits.shape[-1]} entries in the last dim but action_dims "
                f"{self.action_dims} sum to {sum(self.action_dims)}"
            )
        # (K, n) per block of n consecutive factors of size K
        self.blocks_dims: List[Tuple[int, int]] = []
        for k in self.action_dims:
            if self.blocks_dims and self.blocks_dims[-1][0] == k:
                self.blocks_dims[-1] = (k, self.blocks_dims[-1][1] + 1)
            else:
                self.blocks_dims.append((k, 1))
        widths = [k * n for k, n in self.blocks_dims]
        if mask is not None and not isinstance(mask, Tensor):
            raise ValueError(f"mask must be a bool tensor, got {type(mask).__name__} (use torch.as_tensor)")
        if mask is not None:
            try:
                mask = mask.expand(logits.shape)
            except RuntimeError:
                raise ValueError(
                    f"mask of shape {tuple(mask.shape)} does not match the concatenated logits of shape {tuple(logits.shape)}; "
                    "it must have the same shape (or broadcast to it)"
                ) from None
        masks = [None] * len(widths) if mask is None else torch.split(mask, widths, dim=-1)
        self.blocks = [
            DiffusionCategorical(logits=self._unjoin(part, n, k), mask=None if m is None else self._unjoin(m, n, k), **kwargs)
            for part, m, (k, n) in zip(torch.split(logits, widths, dim=-1), masks, self.blocks_dims)
        ]
        self._kwargs = kwargs
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=False)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> "MultiDiffusionCategorical":
        shape = torch.Size(batch_shape) + self.event_shape
        mask = self._join([b.mask for b in self.blocks])
        return type(self)(self.logits.expand(shape), self.action_dims, mask=mask.expand(shape), **self._kwargs)

    @staticmethod
    def _unjoin(tensor: Tensor, n: int, k: int) -> Tensor:
        """``(..., n K)`` -> ``(..., n, K)`` for a block of several factors; one factor stays ``(..., K)``."""
        return tensor.unflatten(-1, (n, k)) if n > 1 else tensor

    def _join(self, per_block: Sequence[Tensor]) -> Tensor:
        """Block outputs shaped like their logits -> the concatenated ``(..., sum(K_i))``."""
        return torch.cat([t.flatten(-2) if n > 1 else t for t, (_, n) in zip(per_block, self.blocks_dims)], dim=-1)

    def _sum_factors(self, per_block: Sequence[Tensor]) -> Tensor:
        """Per-factor values (``(..., n)`` per block, ``(...)`` for one factor) -> their sum over factors."""
        return sum(t.sum(-1) if n > 1 else t for t, (_, n) in zip(per_block, self.blocks_dims))

    def _stack_factors(self, per_block: Sequence[Tensor]) -> Tensor:
        """Per-factor indices -> ``(..., n_factors)``."""
        return torch.cat([t if n > 1 else t.unsqueeze(-1) for t, (_, n) in zip(per_block, self.blocks_dims)], dim=-1)

    @property
    def logits(self) -> Tensor:
        """Normalized per-factor log-probabilities, concatenated."""
        return self._join([b.logits for b in self.blocks])

    @property
    def probs(self) -> Tensor:
        return self._join([b.probs for b in self.blocks])

    @property
    def mode(self) -> Tensor:
        return self._join([b.mode for b in self.blocks])

    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        return self._join([b.rsample(sample_shape) for b in self.blocks])

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        return self._join([b.sample(sample_shape) for b in self.blocks])

    def log_prob(self, value: Tensor) -> Tensor:
        parts = torch.split(value, [k * n for k, n in self.blocks_dims], dim=-1)
        return self._sum_factors([b.log_prob(self._unjoin(v, n, k)) for b, v, (k, n) in zip(self.blocks, parts, self.blocks_dims)])

    def entropy(self) -> Tensor:
        return self._sum_factors([b.entropy() for b in self.blocks])

    def sample_indices(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """``to_indices(sample())`` from the same random draws, without the one-hots."""
        return self._stack_factors([b.sample_index(sample_shape) for b in self.blocks])

    @property
    def mode_indices(self) -> Tensor:
        """``to_indices(mode)``: the most likely action of every factor."""
        return self._stack_factors([b.logits.argmax(-1) for b in self.blocks])

    def to_indices(self, one_hot: Tensor) -> Tensor:
        """Concatenated one-hots ``(..., sum K_i)`` -> action indices ``(..., n_factors)``."""
        return torch.stack([p.argmax(-1) for p in torch.split(one_hot, self.action_dims, dim=-1)], -1)

    def from_indices(self, indices: Tensor) -> Tensor:
        """Action indices ``(..., n_factors)`` -> concatenated one-hots ``(..., sum K_i)``."""
        return indices_to_one_hot(indices, self.action_dims, dtype=self.blocks[0].logits.dtype)


@register_kl(DiffusionCategorical, DiffusionCategorical)
def _kl_diffusion_categorical(p: DiffusionCategorical, q: DiffusionCategorical) -> Tensor:
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)``: 0 where ``p`` masks an action, ``+inf`` where
    only ``q`` does (as ``OneHotCategorical`` gives)."""
    log_p = p.logits.masked_fill(~p.mask, 0.0)  # no -inf - -inf = NaN, in the value or the gradient
    log_q = torch.where(p.mask, q.logits, torch.zeros_like(q.logits))
    return (p.probs * (log_p - log_q)).sum(-1)


@register_kl(MultiDiffusionCategorical, MultiDiffusionCategorical)
def _kl_multi_diffusion_categorical(p: MultiDiffusionCategorical, q: MultiDiffusionCategorical) -> Tensor:
    """The sum of the factors' KLs (the factors are independent)."""
    if p.action_dims != q.action_dims:
        raise ValueError(f"KL needs the same factors on both sides, got action_dims {p.action_dims} and {q.action_dims}")
    return p._sum_factors([kl_divergence(pb, qb) for pb, qb in zip(p.blocks, q.blocks)])


def indices_to_one_hot(indices: Tensor, action_dims: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
    """Action indices ``(..., n_factors)`` -> concatenated one-hots ``(..., sum(action_dims))``."""
    indices = indices.long()
    if indices.shape[-1] != len(action_dims):
        raise ValueError(f"expected {len(action_dims)} factors in the last dim, got shape {tuple(indices.shape)}")
    return torch.cat(
        [torch.nn.functional.one_hot(indices[..., i], k).to(dtype) for i, k in enumerate(action_dims)], dim=-1
    )
