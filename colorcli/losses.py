"""Training losses: rebalanced multinomial cross-entropy, L1/L2, GAN objectives, R1 and GP.

Pure functions on tensors. Shapes: logits ``(B, Q, h, w)``; sparse targets ``index`` (int64) and
``weight`` ``(B, K, h, w)`` (the K non-zero entries of each pixel's target distribution Z, as
made by ``color.encode.soft_encode`` / ``one_hot_encode``); masks ``(B, 1, h, w)`` of 0/1 (bool
or float) marking the pixels that count.

The seed-003 ablations (Zhang et al. Table 1) are one flag away, see ``ABLATIONS``:
``l2`` (eccv16 trunk, regression head, L2 on unit-scale ab), ``class`` (soft targets, no
rebalancing), ``full-soft`` (soft targets + rebalancing) and ``full-onehot`` (one-hot targets +
rebalancing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from colorcli import choices

GanKind = str  # a value of choices.Gan
GAN_KINDS: tuple[str, ...] = choices.values(choices.Gan)


# ----------------------------------------------------------------------------- classification


def rebalanced_cross_entropy(
    logits: torch.Tensor,
    index: torch.Tensor,
    weight: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    pixel_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Zhang et al.'s rebalanced multinomial cross-entropy from sparse targets.

    ``L = (1/N) sum_{valid b,h,w} -v(Z_bhw) sum_k weight_bkhw log softmax(logits)_b[index_bkhw]``

    where ``v(Z) = class_weights[index of the target's largest weight]`` (= ``w[argmax_q Z]``;
    ties -> the first of the K entries; v = 1 when ``class_weights`` is None) and N is the number
    of valid pixels (all B*h*w pixels without ``pixel_mask``). The log-probabilities are gathered
    at the K target bins: no dense Q-channel target is ever built. Computed in float32.
    Zero valid pixels give a zero loss (still connected to ``logits``).
    """
    if logits.dim() != 4 or index.shape != weight.shape or index.dim() != 4:
        raise ValueError(
            f"expected logits (B, Q, h, w) and index/weight (B, K, h, w), got "
            f"{tuple(logits.shape)}, {tuple(index.shape)}, {tuple(weight.shape)}"
        )
    if index.shape[0] != logits.shape[0] or index.shape[2:] != logits.shape[2:]:
        raise ValueError(f"targets {tuple(index.shape)} do not match logits {tuple(logits.shape)}")
    logp = torch.log_softmax(logits.float(), dim=1)
    per_pixel = -(weight.float() * logp.gather(1, index)).sum(dim=1, keepdim=True)  # (B,1,h,w)
    if class_weights is not None:
        top = index.gather(1, weight.argmax(dim=1, keepdim=True))
        per_pixel = per_pixel * class_weights.to(per_pixel)[top]
    if pixel_mask is None:
        return per_pixel.mean()
    mask = pixel_mask.to(per_pixel.dtype).expand_as(per_pixel)
    return (per_pixel * mask).sum() / mask.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------- regression


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    m = mask.to(values.dtype).expand_as(values)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def l1_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean |pred - target|`` over every channel of the valid pixels (``mask`` (B, 1, H, W))."""
    return _masked_mean((pred - target).abs(), mask)


def l2_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean (pred - target)^2`` over every channel of the valid pixels (``mask`` (B, 1, H, W))."""
    return _masked_mean((pred - target).square(), mask)


# ----------------------------------------------------------------------------- GAN objectives


def _check_kind(kind: str) -> None:
    if kind not in GAN_KINDS:
        raise ValueError(f"unknown GAN loss {kind!r} (choose from: {', '.join(GAN_KINDS)})")


def gan_d_loss(
    kind: GanKind | str,
    real_scores: torch.Tensor,
    fake_scores: torch.Tensor,
    *,
    label_smoothing: float = 1.0,
    margin: float = 1.0,
    d_scale: float = 0.5,
) -> torch.Tensor:
    """Discriminator (critic) loss, multiplied by ``d_scale`` (0.5: pix2pix/seed 002 halving).

    With r = real scores, f = fake scores (means over all elements), t = ``label_smoothing``
    (one-sided: the real target; 0.9 for the seed-002 experiment; vanilla and lsgan only):

    - vanilla: ``BCEwithlogits(r, t) + BCEwithlogits(f, 0)``
    - lsgan (a = 0, b = 1, c = 1): ``E[(r - t)^2] + E[f^2]``
    - hinge: ``E[relu(1 - r)] + E[relu(1 + f)]``
    - wgan-gp: ``E[f] - E[r]`` (add ``gradient_penalty``; consider ``d_scale=1``)
    - ebgan: scores are energies (``ebgan-ae`` model, >= 0, low = real):
      ``E[r] + E[relu(margin - f)]``
    """
    _check_kind(kind)
    if label_smoothing != 1.0 and kind not in ("vanilla", "lsgan"):
        raise ValueError(f"label smoothing applies to vanilla and lsgan, not {kind}")
    r, f = real_scores.float(), fake_scores.float()
    if kind == "vanilla":
        loss = F.binary_cross_entropy_with_logits(
            r, torch.full_like(r, label_smoothing)
        ) + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    elif kind == "lsgan":
        loss = (r - label_smoothing).square().mean() + f.square().mean()
    elif kind == "hinge":
        loss = torch.relu(1.0 - r).mean() + torch.relu(1.0 + f).mean()
    elif kind == "wgan-gp":
        loss = f.mean() - r.mean()
    else:
        loss = r.mean() + torch.relu(margin - f).mean()
    return d_scale * loss


def gan_g_loss(kind: GanKind | str, fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss on the discriminator's scores of generated samples.

    - vanilla: non-saturating ``-E[log sigmoid(f)]`` = ``BCEwithlogits(f, 1)``
    - lsgan: ``E[(f - 1)^2]``
    - hinge, wgan-gp: ``-E[f]``
    - ebgan: ``E[f]`` (the energy of generated samples)
    """
    _check_kind(kind)
    f = fake_scores.float()
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
    if kind == "lsgan":
        return (f - 1.0).square().mean()
    if kind in ("hinge", "wgan-gp"):
        return -f.mean()
    return f.mean()


def gradient_penalty(
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    lum: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    weight: float = 10.0,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017) for a conditional critic ``D(L, ab)``.

    ``weight * E_b[(||grad_x sum D(L, x)_b||_2 - 1)^2]`` at ``x = eps * real + (1 - eps) * fake``,
    ``eps ~ U(0, 1)`` per sample ``(B, 1, 1, 1)`` (given, for tests); L is not interpolated.
    ``real``/``fake``: ab ``(B, 2, H, W)``. The result is differentiable (double backward).
    """
    b = real.shape[0]
    if eps is None:
        eps = torch.rand(b, 1, 1, 1, device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminator(lum, x)
    (grad,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return weight * (norms - 1.0).square().mean()


def r1_penalty(
    real_scores: torch.Tensor,
    real_inputs: torch.Tensor | Sequence[torch.Tensor],
    gamma: float,
) -> torch.Tensor:
    """R1 penalty (Mescheder et al. 2018): ``gamma / 2 * E_b[||grad_x D(x)_b||^2]`` on real data.

    ``real_scores`` must have been computed from ``real_inputs`` (which need
    ``requires_grad=True``); with several inputs (e.g. L and ab) the squared gradient norms add
    up. Scores per sample are summed over patch maps. Differentiable (double backward).
    """
    inputs = [real_inputs] if isinstance(real_inputs, torch.Tensor) else list(real_inputs)
    grads = torch.autograd.grad(real_scores.float().sum(), inputs, create_graph=True)
    sq = sum(g.float().square().flatten(1).sum(dim=1) for g in grads)
    assert isinstance(sq, torch.Tensor)
    return 0.5 * gamma * sq.mean()


def generator_loss(
    lambda_gan: float,
    l_gan: torch.Tensor | None,
    lambda_l1: float,
    l1: torch.Tensor | None,
    lambda_l2: float = 0.0,
    l2: torch.Tensor | None = None,
) -> torch.Tensor:
    """``lambda_gan * L_GAN + lambda_l1 * L1 + lambda_l2 * L2``; terms with lambda 0 are skipped
    (and may be None). At least one term must be active."""
    total: torch.Tensor | None = None
    for lam, term, name in (
        (lambda_gan, l_gan, "gan"),
        (lambda_l1, l1, "l1"),
        (lambda_l2, l2, "l2"),
    ):
        if lam == 0:
            continue
        if term is None:
            raise ValueError(f"lambda_{name} = {lam} but no {name} loss given")
        total = lam * term if total is None else total + lam * term
    if total is None:
        raise ValueError("generator_loss: every lambda is 0")
    return total


# ----------------------------------------------------------------------------- ablations


@dataclass(frozen=True)
class AblationSpec:
    """How one seed-003 / Zhang Table 1 variant is trained.

    ``arch``: registry name; ``loss``: "cross_entropy" (with the sparse targets) or "l2" (on
    unit-scale ab at the output resolution); ``encoding``: "soft" (K nearest bins, Gaussian
    weights) or "onehot" (nearest bin), None for regression; ``rebalance``: pass
    ``class_weights`` to ``rebalanced_cross_entropy`` (else None).
    """

    arch: str
    loss: Literal["cross_entropy", "l2"]
    encoding: Literal["soft", "onehot"] | None
    rebalance: bool


ABLATIONS: dict[str, AblationSpec] = {
    "l2": AblationSpec("eccv16-regression", "l2", None, False),
    "class": AblationSpec("eccv16", "cross_entropy", "soft", False),
    "full-soft": AblationSpec("eccv16", "cross_entropy", "soft", True),
    "full-onehot": AblationSpec("eccv16", "cross_entropy", "onehot", True),
}
