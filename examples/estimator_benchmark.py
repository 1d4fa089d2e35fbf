"""Estimator-quality benchmark of the sampler family on two tasks with exact answers.

1. **Gradient quality** (enumerable task). ``f`` is a fixed random MLP of ``D = 3`` one-hot
   variables with ``K = 5`` values (125 joint actions), so the exact gradient of
   ``E_pi[f(X)]`` with respect to the logits is autograd through ``sum_x pi(x) f(x)``. For every
   sampler and setting we draw ``N`` single-sample estimates ``g_i = d f(sample(logits)) / d logits``
   and report, relative to ``||g*||^2`` and averaged over a few random logit draws,

       bias^2 = ||mean_i g_i - g*||^2,   variance = mean_i ||g_i - mean_i g_i||^2,
       cosine = cos(mean_i g_i, g*).

   ``bias^2`` carries a Monte-Carlo floor ``variance / N`` (column ``mc_floor``): values near it
   mean "unbiased as far as we can tell". The score-function (REINFORCE + leave-one-out baseline)
   row uses ``n_samples`` evaluations of ``f`` per estimate, the pathwise rows one.

2. **Polynomial programming** (the ReDGE paper's benchmark). ``D`` binary variables, loss
   ``||x - 0.45||_p^p / D`` on a sample ``x in {0, 1}^D``, Adam on logits initialised at zero.
   We report the EXACT objective of the learned distribution,

       L(pi) = sum_d [pi_d(1) 0.55^p + pi_d(0) 0.45^p] / D      (optimum 0.45^p),

   next to the loss on the sampler's own samples (mean over the last 10% of steps): samplers
   whose hard samples do not follow ``pi`` can show a low sample loss and a poor exact one.

Usage::

    python examples/estimator_benchmark.py                      # full run, writes results/estimator_benchmark/
    python examples/estimator_benchmark.py --quick --out /tmp/eb # seconds-long smoke run
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rl_diffcat.samplers import make_sampler, score_function, set_validation

N_STEPS_GRID = (2, 3, 5, 10)
T_1_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)
TAU_GRID = (0.1, 0.3, 0.5, 1.0, 2.0)
SF_SAMPLES_GRID = (2, 4)
DIFFUSION_SAMPLERS = ("redge", "redge_cov", "reindge")
TAU_SAMPLERS = ("gumbel_softmax", "reinmax")
DEFAULT_KNOBS = {
    "redge": dict(n_steps=5, t_1=0.5),
    "redge_cov": dict(n_steps=5, t_1=0.5),
    "reindge": dict(n_steps=5, t_1=0.5),
    "gumbel_softmax": dict(tau=1.0),
    "reinmax": dict(tau=1.0),
    "straight_through": dict(),
    "score_function": dict(n_samples=2),
}
"""The library defaults (``make_sampler`` / ``score_function``), marked in the tables."""
GRADIENT_CRITERIA = {"least bias": ("bias2_rel", "min"), "least mse": ("mse_rel", "min")}
"""Which rows of the gradient-quality grid the condensed table shows (besides the defaults)."""
POLY_CRITERIA = {"best": ("exact_loss", "min"), "largest gap": ("abs_gap", "max")}
"""Polynomial rows shown: lowest exact loss, and the largest |sample loss - exact loss|."""


@dataclass(frozen=True)
class Setting:
    """One estimator: a sampler name and its knobs."""

    sampler: str
    knobs: Dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        names = {"n_steps": "n", "t_1": "t1", "tau": "tau", "n_samples": "m"}
        return " ".join([self.sampler] + [f"{names[k]}={v:g}" for k, v in self.knobs.items()])

    @property
    def is_default(self) -> bool:
        return self.knobs == DEFAULT_KNOBS.get(self.sampler)


def settings_grid(quick: bool, defaults_only: bool = False) -> List[Setting]:
    """Every sampler over its knob grid (a corner of it with ``quick``, its default with ``defaults_only``)."""
    if defaults_only:
        return [Setting(name, dict(knobs)) for name, knobs in DEFAULT_KNOBS.items()]
    n_grid, t_grid, tau_grid = ((3, 5), (0.1, 0.5), (0.5, 1.0)) if quick else (N_STEPS_GRID, T_1_GRID, TAU_GRID)
    settings = [
        Setting(name, dict(n_steps=n, t_1=t)) for name in DIFFUSION_SAMPLERS for n in n_grid for t in t_grid
    ]
    settings += [Setting(name, dict(tau=tau)) for name in TAU_SAMPLERS for tau in tau_grid]
    settings.append(Setting("straight_through"))
    settings += [Setting("score_function", dict(n_samples=m)) for m in SF_SAMPLES_GRID]
    return settings


def surrogate_fn(setting: Setting, f: Callable[[Tensor], Tensor]) -> Callable[..., Tensor]:
    """Return ``surrogate(logits, generator)`` whose gradient is the setting's estimate of ``grad E[f]``.

    ``logits`` has shape ``(N, D, K)``; the result has shape ``(N,)`` and its row ``i`` only
    depends on ``logits[i]``, so one backward pass of ``surrogate.sum()`` gives ``N`` independent
    per-row estimates in ``logits.grad``.
    """
    if setting.sampler == "score_function":
        n_samples = int(setting.knobs["n_samples"])
        return lambda logits, generator: score_function(
            logits, f, n_samples=n_samples, generator=generator, validate_args=False
        )
    sample = make_sampler(setting.sampler, **setting.knobs)
    return lambda logits, generator: f(sample(logits, hard=True, generator=generator, validate_args=False))


# ---------------------------------------------------------------------------------------------
# Task 1: gradient bias / variance / cosine on an enumerable objective
# ---------------------------------------------------------------------------------------------


class RandomMLPObjective:
    """``f(x) = w2 . tanh(W1 vec(x) + b1)``: a smooth, nonlinear function of ``D`` one-hot variables.

    :param n_vars: number of categorical variables ``D``.
    :param n_values: number of values per variable ``K``.
    :param hidden: hidden width of the MLP.
    :param seed: seed of the fixed random weights.
    """

    def __init__(self, n_vars: int, n_values: int, hidden: int = 32, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.w1 = torch.randn(n_vars * n_values, hidden, generator=gen)
        self.b1 = 0.5 * torch.randn(hidden, generator=gen)
        self.w2 = torch.randn(hidden, generator=gen) / math.sqrt(hidden)
        self.n_vars, self.n_values = n_vars, n_values

    def __call__(self, x: Tensor) -> Tensor:
        """:param x: one-hots (or relaxations) of shape ``(..., D, K)``; :return: shape ``(...)``."""
        return torch.tanh(x.flatten(-2) @ self.w1 + self.b1) @ self.w2

    def joint_actions(self) -> Tensor:
        """All ``K^D`` joint one-hot actions, shape ``(K^D, D, K)``."""
        eye = torch.eye(self.n_values, dtype=self.w1.dtype)
        grid = itertools.product(range(self.n_values), repeat=self.n_vars)
        return torch.stack([eye[list(idx)] for idx in grid])

    def exact_gradient(self, logits: Tensor) -> Tensor:
        """``grad_logits sum_x pi(x) f(x)`` by enumeration, with ``pi(x) = prod_d softmax(logits_d)[x_d]``."""
        logits = logits.detach().clone().requires_grad_(True)
        joint = self.joint_actions()
        log_pi = (joint * logits.log_softmax(-1)).sum((-2, -1))
        (log_pi.exp() * self(joint)).sum().backward()
        return logits.grad


def gradient_quality(
    setting: Setting,
    objective: RandomMLPObjective,
    n_estimates: int,
    n_logit_draws: int,
    logit_scale: float,
    seed: int,
) -> Dict[str, float]:
    """Relative bias^2, variance and cosine of one setting, averaged over random logit draws."""
    surrogate = surrogate_fn(setting, objective)
    draws = []
    for draw in range(n_logit_draws):
        logit_gen = torch.Generator().manual_seed(seed + draw)
        logits = logit_scale * torch.randn(objective.n_vars, objective.n_values, generator=logit_gen)
        g_star = objective.exact_gradient(logits).flatten()
        # Each row of the (N, D, K) leaf gets its own independent sample and its own gradient.
        rows = logits.expand(n_estimates, *logits.shape).clone().requires_grad_(True)
        surrogate(rows, torch.Generator().manual_seed(10_000 + seed + draw)).sum().backward()
        grads = rows.grad.flatten(1).double()
        g_star = g_star.double()
        mean = grads.mean(0)
        norm2 = g_star.square().sum()
        variance = (grads - mean).square().sum(1).mean()
        draws.append(
            dict(
                bias2_rel=float((mean - g_star).square().sum() / norm2),
                var_rel=float(variance / norm2),
                cosine=float(torch.nn.functional.cosine_similarity(mean, g_star, dim=0)),
                single_cosine=float(torch.nn.functional.cosine_similarity(grads, g_star[None], dim=1).mean()),
            )
        )
    stats = {key: float(np.mean([d[key] for d in draws])) for key in draws[0]}
    stats["mse_rel"] = stats["bias2_rel"] + stats["var_rel"]
    stats["mc_floor"] = stats["var_rel"] / n_estimates
    return stats


# ---------------------------------------------------------------------------------------------
# Task 2: polynomial programming (ReDGE paper)
# ---------------------------------------------------------------------------------------------


def polynomial_loss(x: Tensor, p: float) -> Tensor:
    """``||x - 0.45||_p^p / D`` with ``x in {0, 1}^D`` the index of the one-hot ``(..., D, 2)``."""
    return (x[..., 1] - 0.45).abs().pow(p).mean(-1)


def exact_polynomial_loss(logits: Tensor, p: float) -> float:
    """``E_pi[loss] = sum_d [pi_d(1) 0.55^p + pi_d(0) 0.45^p] / D``: the objective we optimise."""
    probs = logits.detach().softmax(-1)
    return float((probs[:, 1] * 0.55**p + probs[:, 0] * 0.45**p).mean())


def polynomial_run(
    setting: Optional[Setting], n_vars: int, p: float, n_iters: int, lr: float, batch: int, seed: int
) -> Dict[str, float]:
    """Train logits with Adam on the polynomial loss; ``setting=None`` uses the exact gradient."""
    logits = torch.zeros(n_vars, 2, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    objective = lambda x: polynomial_loss(x, p)  # noqa: E731
    surrogate = None if setting is None else surrogate_fn(setting, objective)
    sample_losses = []
    for _ in range(n_iters):
        if surrogate is None:
            # Reference: the closed-form objective itself.
            probs = logits.softmax(-1)
            loss = (probs[:, 1] * 0.55**p + probs[:, 0] * 0.45**p).mean()
        else:
            # loss = mean over the batch of f(x_b), x_b = sample(logits); the score-function
            # surrogate has the value of the mean f over its n_samples draws.
            loss = surrogate(logits.expand(batch, n_vars, 2), generator).mean()
        sample_losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tail = max(1, n_iters // 10)
    return dict(exact_loss=exact_polynomial_loss(logits, p), sample_loss=float(np.mean(sample_losses[-tail:])))


# ---------------------------------------------------------------------------------------------
# Output: tables and figures
# ---------------------------------------------------------------------------------------------


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no ``tabulate`` dependency); small numbers in scientific notation."""

    def fmt(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.1e}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.values])


def condensed(frame: pd.DataFrame, criteria: Dict[str, Tuple[str, str]]) -> pd.DataFrame:
    """For each sampler: its default row and its extreme row under each criterion, merged when equal.

    :param criteria: tag -> (column, "min" or "max"), e.g. ``{"least mse": ("mse_rel", "min")}``.
    """
    rows = []
    for _, group in frame.groupby("sampler", sort=False):
        tags: Dict[int, List[str]] = {i: ["default"] for i in group.index[group["is_default"]]}
        for tag, column in criteria.items():
            column, extreme = column
            if group[column].isna().all():
                continue
            index = group[column].idxmin() if extreme == "min" else group[column].idxmax()
            tags.setdefault(index, []).append(tag)
        rows += [dict(frame.loc[i].to_dict(), which=" + ".join(t)) for i, t in sorted(tags.items())]
    return pd.DataFrame(rows)


def plot_gradient_quality(frame: pd.DataFrame, path: str) -> None:
    """Rows: bias^2, variance, cosine. Columns: redge, redge_cov, reindge (vs t_1, one line per
    n_steps) and the tau samplers (vs tau); straight-through and score-function as flat lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("bias2_rel", "bias² / ||g*||²", True), ("var_rel", "variance / ||g*||²", True),
               ("cosine", "cos(E[g], g*)", False)]
    columns = list(DIFFUSION_SAMPLERS) + ["tau samplers"]
    fig, axes = plt.subplots(len(metrics), len(columns), figsize=(17, 11), sharey="row")
    refs = frame[frame["sampler"].isin(["straight_through", "score_function"])]
    for row, (metric, ylabel, log) in enumerate(metrics):
        for col, name in enumerate(columns):
            ax = axes[row, col]
            if name in DIFFUSION_SAMPLERS:
                sub = frame[frame["sampler"] == name]
                lines = [(line["t_1"], line, f"n_steps={int(n)}", "o-") for n, line in sub.groupby("n_steps")]
                ax.set_xlabel("t_1")
            else:
                lines = [(frame[frame["sampler"] == s]["tau"], frame[frame["sampler"] == s], s, "s-")
                         for s in TAU_SAMPLERS]
                ax.set_xscale("log")
                ax.set_xlabel("tau")
            for x, line, label, style in lines:
                (handle,) = ax.plot(x, line[metric], style, label=label)
                if metric == "bias2_rel":
                    # Hollow: bias² not resolved from the Monte-Carlo noise of the mean (< 3 var / N).
                    noisy = line[metric] < 3 * line["mc_floor"]
                    ax.plot(x[noisy], line[metric][noisy], style[0], color=handle.get_color(), mfc="white")
            for (_, ref), style in zip(refs.iterrows(), ["k--", "k:", "k-."]):
                ax.axhline(ref[metric], color=style[0], linestyle=style[1:], linewidth=1, label=ref["label"])
            if log:
                ax.set_yscale("log")
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Gradient estimators of grad E_pi[f], f = random MLP of 3 one-hots (K=5); "
                 "black lines = straight-through / score-function references; "
                 "hollow bias² markers: within 3x of the Monte-Carlo floor variance / N")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_polynomial(frame: pd.DataFrame, optimum: float, path: str) -> None:
    """Bars: final exact loss at each sampler's default, best and largest-gap setting; crosses: the
    loss on the sampler's own samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = condensed(frame, POLY_CRITERIA)
    fig, ax = plt.subplots(figsize=(12, 6.5))
    y = np.arange(len(rows))
    colors = ["tab:orange" if "gap" in w else "tab:blue" if "best" in w else "tab:gray" for w in rows["which"]]
    ax.barh(y, rows["exact_loss"] - optimum, xerr=rows["exact_loss_std"], left=optimum, color=colors,
            label="exact loss L(pi); blue: best setting, gray: default, orange: largest sample/exact gap")
    ax.plot(rows["sample_loss"], y, "rx", label="loss on the sampler's own samples (last 10%)")
    ax.axvline(optimum, color="k", linestyle="--", linewidth=1, label=f"optimum {optimum:.4f}")
    ax.set_yticks(y, [f"{lab} ({w})" for lab, w in zip(rows["label"], rows["which"])], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("final loss")
    ax.set_xlim(optimum - 0.003, None)
    ax.set_title("Polynomial programming: ||x - 0.45||² / D, Adam on logits (mean ± std over seeds)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/estimator_benchmark", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny grid and budgets (smoke test); budgets given explicitly are kept")
    parser.add_argument("--defaults-only", action="store_true",
                        help="only each sampler's default setting (e.g. for long --poly-iters runs)")
    parser.add_argument("--replot", action="store_true",
                        help="redraw figures and tables from the CSVs in --out (pass the run's other options)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (the run is deterministic)")
    parser.add_argument("--n-estimates", type=int, default=50_000, help="gradient estimates per logit draw")
    parser.add_argument("--n-logit-draws", type=int, default=5, help="random logit draws averaged over")
    parser.add_argument("--logit-scale", type=float, default=1.5, help="logits ~ N(0, scale^2)")
    parser.add_argument("--poly-dim", type=int, default=256, help="polynomial task: number of binary variables")
    parser.add_argument("--poly-p", type=float, default=2.0, help="polynomial task: exponent p")
    parser.add_argument("--poly-iters", type=int, default=1000, help="polynomial task: Adam steps")
    parser.add_argument("--poly-lr", type=float, default=1e-2, help="polynomial task: Adam learning rate")
    parser.add_argument("--poly-batch", type=int, default=1, help="polynomial task: samples per step (score_function: n_samples x batch evaluations)")
    parser.add_argument("--poly-seeds", type=int, default=3, help="polynomial task: seeds per setting")
    args = parser.parse_args(argv)
    if args.quick:  # the smoke-test budgets, for the options not given on the command line
        quick = dict(n_estimates=2000, n_logit_draws=2, poly_dim=32, poly_iters=100, poly_seeds=1)
        for name, value in quick.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    return args


def gradient_task(args: argparse.Namespace, settings: List[Setting]) -> pd.DataFrame:
    """Task 1 over every setting: one row of relative bias², variance and cosines each."""
    objective = RandomMLPObjective(n_vars=3, n_values=5, seed=args.seed)
    rows = []
    for setting in settings:
        stats = gradient_quality(setting, objective, args.n_estimates, args.n_logit_draws, args.logit_scale, args.seed)
        rows.append(dict(sampler=setting.sampler, label=setting.label, is_default=setting.is_default,
                         **{k: setting.knobs.get(k, np.nan) for k in ("n_steps", "t_1", "tau", "n_samples")},
                         **stats))
    return pd.DataFrame(rows)


def polynomial_task(args: argparse.Namespace, settings: List[Setting]) -> pd.DataFrame:
    """Task 2 over every setting (and the exact-gradient reference): final exact and sample losses."""
    rows = []
    for setting in [None] + settings:
        runs = [polynomial_run(setting, args.poly_dim, args.poly_p, args.poly_iters, args.poly_lr,
                               args.poly_batch, args.seed + s) for s in range(args.poly_seeds)]
        label = "exact_gradient (reference)" if setting is None else setting.label
        rows.append(dict(sampler=label.split()[0], label=label, is_default=setting is None or setting.is_default,
                         exact_loss=float(np.mean([r["exact_loss"] for r in runs])),
                         exact_loss_std=float(np.std([r["exact_loss"] for r in runs])),
                         sample_loss=float(np.mean([r["sample_loss"] for r in runs]))))
    frame = pd.DataFrame(rows)
    frame["gap"] = frame["sample_loss"] - frame["exact_loss"]
    # Only ReDGE-family hard samples deviate from pi; elsewhere the gap is training lag and noise.
    frame["abs_gap"] = frame["gap"].abs().where(frame["sampler"].isin(DIFFUSION_SAMPLERS))
    return frame


def report(args: argparse.Namespace, grad_frame: pd.DataFrame, poly_frame: pd.DataFrame) -> None:
    """Draw both figures into ``args.out``; print the condensed Markdown tables and write them to summary.md."""
    optimum = 0.45**args.poly_p
    plot_gradient_quality(grad_frame, os.path.join(args.out, "gradient_quality.png"))
    plot_polynomial(poly_frame, optimum, os.path.join(args.out, "polynomial.png"))
    columns = ["label", "which", "bias2_rel", "var_rel", "mse_rel", "cosine", "single_cosine", "mc_floor"]
    poly_columns = ["label", "which", "exact_loss", "exact_loss_std", "sample_loss", "gap"]
    text = [
        f"## Gradient quality (D=3, K=5, {args.n_estimates} estimates x {args.n_logit_draws} logit draws, "
        f"logits ~ N(0, {args.logit_scale}^2)); rows: default, lowest bias², lowest bias² + variance\n",
        markdown_table(condensed(grad_frame, GRADIENT_CRITERIA)[columns]),
        f"\n## Polynomial programming (D={args.poly_dim}, p={args.poly_p:g}, {args.poly_iters} Adam steps, "
        f"lr={args.poly_lr:g}, batch={args.poly_batch}, {args.poly_seeds} seeds; optimum {optimum:.4f}); "
        f"rows: default, lowest exact loss, largest |sample - exact| gap\n",
        markdown_table(condensed(poly_frame, POLY_CRITERIA)[poly_columns]),
    ]
    print("\n".join(text))
    with open(os.path.join(args.out, "summary.md"), "w") as file:
        file.write("\n".join(text) + "\n")


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    set_validation(False)
    os.makedirs(args.out, exist_ok=True)
    paths = {name: os.path.join(args.out, f"{name}.csv") for name in ("gradient_quality", "polynomial")}
    start = time.time()
    if args.replot:
        grad_frame, poly_frame = (pd.read_csv(paths[name]) for name in ("gradient_quality", "polynomial"))
    else:
        settings = settings_grid(args.quick, args.defaults_only)
        grad_frame = gradient_task(args, settings)
        grad_frame.to_csv(paths["gradient_quality"], index=False)
        print(f"gradient task done in {time.time() - start:.0f}s", flush=True)
        poly_frame = polynomial_task(args, settings)
        poly_frame.to_csv(paths["polynomial"], index=False)
    report(args, grad_frame, poly_frame)
    print(f"\nwrote {args.out}/{{gradient_quality,polynomial}}.{{csv,png}} and summary.md "
          f"in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
