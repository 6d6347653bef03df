"""EMA vector quantiser with k-means initialisation and dead-code replacement."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(x)
    return x


def kmeans(x: torch.Tensor, k: int, iters: int = 20, generator: torch.Generator | None = None
           ) -> torch.Tensor:
    """Plain Lloyd k-means on (N, D) -> (k, D) centroids (samples with replacement if N < k)."""
    n = x.shape[0]
    idx = torch.randperm(n, generator=generator)[:k] if n >= k else torch.randint(n, (k,), generator=generator)
    c = x[idx.to(x.device)].clone()
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        nonempty = counts > 0
        c[nonempty] = sums[nonempty] / counts[nonempty, None]
    return c


class EMAQuantizer(nn.Module):
    """Nearest-code quantiser; codes follow exponential moving averages of their members.

    The codebook is a buffer (not a parameter): it is learned by EMA, initialised by
    k-means on the first training batch, and codes whose EMA usage falls below
    `dead_threshold` are re-seeded from random latents of the current batch.
    """

    def __init__(self, num_codes: int, dim: int, decay: float = 0.99, dead_threshold: float = 0.5,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay = num_codes, dim, decay
        self.dead_threshold, self.eps = dead_threshold, eps
        self.register_buffer("codebook", torch.randn(num_codes, dim) * 0.1)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Code ids (...,) of latents z (..., dim)."""
        flat = z.reshape(-1, self.dim)
        d = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t()
             + self.codebook.pow(2).sum(1)[None])
        return d.argmin(1).reshape(z.shape[:-1])

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        return self.codebook[ids]

    @torch.no_grad()
    def init_codes(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """k-means initialise the codebook on latents z (..., dim), e.g. every training window's
        (not just the first batch's: with K close to a batch's token count that copies the batch)."""
        flat = z.detach().reshape(-1, self.dim).float()
        c = kmeans(flat, self.num_codes, generator=generator)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(c, 0)
        self.codebook.copy_(c)
        self.ema_sum.copy_(c)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, z: torch.Tensor, ids: torch.Tensor) -> None:
        """One EMA step (training only), with k-means init on the first call and dead-code reseeding."""
        flat = z.detach().reshape(-1, self.dim).float()
        if not bool(self.initialised):
            self.init_codes(z)
            ids = self.nearest(z)
        onehot = torch.zeros(flat.shape[0], self.num_codes, device=flat.device)
        onehot.scatter_(1, ids.reshape(-1, 1), 1.0)
        count = _all_reduce_sum(onehot.sum(0))
        sums = _all_reduce_sum(onehot.t() @ flat)
        if dist.is_available() and dist.is_initialized():
            ws = dist.get_world_size()
            count, sums = count / ws, sums / ws
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        dead = self.ema_count < self.dead_threshold
        if bool(dead.any()):
            g = torch.Generator(device="cpu").manual_seed(int(self.ema_count.sum().item() * 1000) % (2 ** 31))
            pick = torch.randint(flat.shape[0], (int(dead.sum()),), generator=g).to(flat.device)
            fresh = flat[pick]
            if dist.is_available() and dist.is_initialized():
                dist.broadcast(fresh, 0)
            self.codebook[dead] = fresh
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0

    @staticmethod
    def usage_stats(ids: torch.Tensor, num_codes: int) -> tuple[float, float]:
        """(perplexity, share of codes used) of a set of ids."""
        counts = torch.bincount(ids.reshape(-1), minlength=num_codes).double()
        p = counts / counts.sum().clamp(min=1)
        perplexity = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        return perplexity, float((counts > 0).double().mean())


class PairQuantizer(nn.Module):
    """One token from two sub-codebooks of K2 = sqrt(K) codes: id = i * K2 + j.

    ``residual``: code i of the first codebook plus code j of the second, which quantises
    what the first one left. ``product``: the two halves of the code vector are
    quantised separately and concatenated. Either way each sub-code is fitted on far
    more latents than a flat code of a K-code book, and the K ids combine sub-codes
    never seen together in training; the AR model still sees one token per region.
    """

    KINDS = ("residual", "product")

    def __init__(self, num_codes: int, dim: int, kind: str = "residual", decay: float = 0.99,
                 dead_threshold: float = 0.5) -> None:
        super().__init__()
        k2 = int(round(num_codes ** 0.5))
        if k2 * k2 != num_codes:
            raise ValueError(f"a pair codebook needs a square codebook size, got {num_codes}")
        if kind not in self.KINDS:
            raise ValueError(f"pair codebook kind must be one of {self.KINDS}, got {kind!r}")
        if kind == "product" and dim % 2:
            raise ValueError(f"a product codebook needs an even code_dim, got {dim}")
        self.num_codes, self.dim, self.kind, self.k2 = num_codes, dim, kind, k2
        sub = dim // 2 if kind == "product" else dim
        self.first = EMAQuantizer(k2, sub, decay, dead_threshold)
        self.second = EMAQuantizer(k2, sub, decay, dead_threshold)

    @property
    def initialised(self) -> torch.Tensor:
        return self.first.initialised & self.second.initialised

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.dim // 2
        return z[..., :h], z[..., h:]

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "product":
            a, b = self._split(z)
            return self.first.nearest(a) * self.k2 + self.second.nearest(b)
        i = self.first.nearest(z)
        return i * self.k2 + self.second.nearest(z - self.first.lookup(i))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        i, j = ids // self.k2, ids % self.k2
        if self.kind == "product":
            return torch.cat([self.first.lookup(i), self.second.lookup(j)], dim=-1)
        return self.first.lookup(i) + self.second.lookup(j)

    @torch.no_grad()
    def init_codes(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        flat = z.detach().reshape(-1, self.dim).float()
        if self.kind == "product":
            a, b = self._split(flat)
            self.first.init_codes(a, generator)
            self.second.init_codes(b, generator)
            return
        self.first.init_codes(flat, generator)
        self.second.init_codes(flat - self.first.lookup(self.first.nearest(flat)), generator)

    @torch.no_grad()
    def update(self, z: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """EMA step of both sub-codebooks (their own ids are recomputed from z)."""
        flat = z.detach().reshape(-1, self.dim).float()
        if self.kind == "product":
            a, b = self._split(flat)
            self.first.update(a, self.first.nearest(a))
            self.second.update(b, self.second.nearest(b))
            return
        self.first.update(flat, self.first.nearest(flat))
        r = flat - self.first.lookup(self.first.nearest(flat))
        self.second.update(r, self.second.nearest(r))
