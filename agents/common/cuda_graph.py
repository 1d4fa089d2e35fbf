"""Replay a whole gradient step as one CUDA graph.

The networks of RL are small: on a GPU an update is a few hundred kernels of microseconds each, and
launching them from Python (autograd, optimizers, compiled-graph wrappers) costs more than running
them. ``GraphedStep`` captures a step function once per input signature (shapes, dtypes, structure)
and afterwards only copies the new minibatch into the captured input tensors and replays the graph.

What the captured function may do is what CUDA graphs allow: no host syncs (``.item()``, value
checks), no CPU tensors that change between calls, the same kernels every call. Random numbers
from PyTorch's default CUDA generator are fine: each replay draws fresh ones, the same sequence an
eager run from the same generator state would draw. Optimizers must be capturable (their step
counts and learning rates on the device): :func:`make_capturable` converts them in place.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Tuple

import torch as th
from torch.utils import _pytree as pytree

# Eager calls on a side stream before the capture: they run lazy initializations (cuBLAS
# workspaces, the autograd engine's device threads, optimizer state) that must not be captured.
WARMUP_CALLS = 3
# Marks the optimizer groups that make_capturable converted (it travels in a saved state dict), so
# release_capturable undoes that and leaves a capturable or fused optimizer the user chose alone.
CAPTURABLE_MARK = "rl_diffcat_made_capturable"


class _Captured:
    """One captured graph with its static inputs and outputs."""

    def __init__(self) -> None:
        self.graph = th.cuda.CUDAGraph()
        self.inputs: List[th.Tensor] = []
        self.outputs: Dict[str, th.Tensor] = {}


class GraphedStep:
    """``fn(*args) -> dict of tensors``, replayed as a CUDA graph.

    The first ``WARMUP_CALLS`` calls with a new input signature run eagerly on a side stream
    (they are real steps), the next one captures the graph and replays it, and later calls replay
    it. Tensor arguments are copied into the captured inputs; non-tensor arguments (a discount
    factor, say) are part of the signature, so a new value captures a new graph. The returned
    tensors are copies: the next replay overwrites the graph's own outputs.

    :param fn: the step; called with the same arguments every time, returning a dict of tensors.
    """

    def __init__(self, fn: Callable[..., Dict[str, th.Tensor]]) -> None:
        self.fn = fn
        self._graphs: Dict[Hashable, _Captured] = {}
        self._eager_calls: Dict[Hashable, int] = {}
        self.replays = 0

    @staticmethod
    def _signature(leaves: List[Any], spec: Any) -> Hashable:
        described = tuple(
            (tuple(leaf.shape), leaf.dtype, leaf.device) if isinstance(leaf, th.Tensor) else ("value", leaf) for leaf in leaves
        )
        return spec, described

    def __call__(self, *args: Any) -> Dict[str, th.Tensor]:
        leaves, spec = pytree.tree_flatten(args)
        signature = self._signature(leaves, spec)
        captured = self._graphs.get(signature)
        if captured is None:
            done = self._eager_calls.get(signature, 0)
            if done < WARMUP_CALLS:
                self._eager_calls[signature] = done + 1
                return self._side_stream_call(args)
            captured = self._capture(leaves, spec)
            self._graphs[signature] = captured
        tensors = [leaf for leaf in leaves if isinstance(leaf, th.Tensor)]
        th._foreach_copy_(captured.inputs, tensors)
        captured.graph.replay()
        self.replays += 1
        return {key: value.clone() for key, value in captured.outputs.items()}

    def _side_stream_call(self, args: Tuple[Any, ...]) -> Dict[str, th.Tensor]:
        stream = th.cuda.Stream()
        stream.wait_stream(th.cuda.current_stream())
        with th.cuda.stream(stream):
            outputs = self.fn(*args)
        th.cuda.current_stream().wait_stream(stream)
        return outputs

    def _capture(self, leaves: List[Any], spec: Any) -> _Captured:
        """Record one call on static copies of the inputs. Capturing runs no kernel: the caller
        replays the graph for this call too."""
        captured = _Captured()
        static_leaves = [leaf.clone() if isinstance(leaf, th.Tensor) else leaf for leaf in leaves]
        captured.inputs = [leaf for leaf in static_leaves if isinstance(leaf, th.Tensor)]
        static_args = pytree.tree_unflatten(static_leaves, spec)
        th.cuda.synchronize()
        with stale_streams_redirected(), th.cuda.graph(captured.graph):
            captured.outputs = dict(self.fn(*static_args))
        return captured


@contextlib.contextmanager
def stale_streams_redirected() -> Iterator[bool]:
    """While capturing, let autograd run a node that remembers a stream outside the capture (the
    stream of an earlier eager step, or the default stream) on the capturing stream instead; a
    wait on the default stream would otherwise invalidate the capture ("operation would make the
    legacy stream depend on a capturing blocking stream"). PyTorch's own switch,
    ``torch.autograd.graph.set_override_stale_capture_stream`` (torch 2.13 has it, older versions
    do not: there this does nothing). Restores the previous setting. Yields whether it applied."""
    setter = getattr(th.autograd.graph, "set_override_stale_capture_stream", None)
    getter = getattr(th._C, "_override_stale_capture_stream", None)
    if setter is None or getter is None:
        yield False
        return
    previous = bool(getter())
    setter(True)
    try:
        yield True
    finally:
        setter(previous)


def make_capturable(optimizer: th.optim.Optimizer, device: th.device) -> None:
    """Turn an Adam-style optimizer capturable in place: step counts and learning rates become
    device tensors that a graph replay reads and updates (a new learning rate is then written
    into the tensor, see :func:`set_learning_rate`)."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise ValueError(f"{type(optimizer).__name__} has no capturable mode; cuda_graph=True needs one (Adam, AdamW, ...)")
        if not group["capturable"]:
            group["capturable"] = True
            group[CAPTURABLE_MARK] = True
        if not isinstance(group["lr"], th.Tensor):
            group["lr"] = th.tensor(float(group["lr"]), device=device)
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if "step" in state:
                state["step"] = state["step"].to(device=device, dtype=th.float32)


def release_capturable(optimizer: th.optim.Optimizer) -> None:
    """Undo :func:`make_capturable` (float learning rates, step counts on the CPU), so that a
    model saved while graphed loads and trains anywhere. Groups it did not convert keep their
    ``capturable`` and ``fused`` settings (and so their device step counts)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], th.Tensor):
            group["lr"] = float(group["lr"])
        if not group.pop(CAPTURABLE_MARK, False):
            continue
        group["capturable"] = False
        if group.get("fused"):
            continue
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if isinstance(state.get("step"), th.Tensor) and state["step"].device.type != "cpu":
                state["step"] = state["step"].to("cpu")


def set_learning_rate(optimizer: th.optim.Optimizer, learning_rate: float) -> None:
    """SB3's ``update_learning_rate``, writing into a tensor learning rate (which a captured graph
    reads) instead of replacing it."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], th.Tensor):
            group["lr"].fill_(learning_rate)
        else:
            group["lr"] = learning_rate


def graph_supported(device: th.device) -> Optional[str]:
    """``None`` if CUDA graphs can run on ``device``, else why not."""
    if th.device(device).type != "cuda":
        return f"cuda_graph=True needs a CUDA device, got {device}"
    if not th.cuda.is_available():
        return "cuda_graph=True needs CUDA, which this torch build or machine lacks"
    return None
