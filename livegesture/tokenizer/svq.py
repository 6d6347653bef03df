"""SVQ: the streaming asymmetric VQ motion tokenizer of one body region (docs/design.md §3).

Stage 1 trains the bidirectional encoder E and the causal decoder D as a plain
autoencoder. Stage 2 freezes both, and learns a codebook (EMA) over a small
projection P of E's latents, plus an MLP W that maps a code back into the latent
space D expects. Stage 3 (optional, a departure from docs/design.md §3) fine-tunes D alone on
the stage-2 tokens: D was trained on continuous latents, and neighbouring tokens, whose
codes are chosen independently, then meet with a jump at every token boundary (wrist
speed across boundaries 3.7-4.7x that inside tokens on BEAT2 sample clips, 1.0 for real
motion); trained on the codes it will see, with velocity and acceleration losses, it
joins them smoothly. Tokens (E, P, codebook) and W are unchanged by stage 3. At run time
only D, W and the codebook are used: token ids in, frames out, streaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..body.constants import REGION_DIMS, REGIONS
from ..streaming.state import StreamState
from .config import TokenizerConfig
from .decoder import CausalMotionDecoder
from .encoder import MotionEncoder
from .quantizer import EMAQuantizer, PairQuantizer


def _diff(x: torch.Tensor) -> torch.Tensor:
    return x[:, 1:] - x[:, :-1]


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, velocity_weight: float,
                        acceleration_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 on features plus L1 on their frame-to-frame velocity (and acceleration)."""
    rec = F.l1_loss(pred, target)
    loss = rec + velocity_weight * F.l1_loss(_diff(pred), _diff(target))
    if acceleration_weight > 0:
        loss = loss + acceleration_weight * F.l1_loss(_diff(_diff(pred)), _diff(_diff(target)))
    return loss, rec


def boundary_loss(pred: torch.Tensor, target: torch.Tensor, frames_per_token: int = 4) -> torch.Tensor:
    """L1 of the velocity across token boundaries (frame k*4+3 -> k*4+4 of windows that start at a
    token boundary) and of the two accelerations that straddle each boundary: where a decoder that
    joins its tokens badly jumps."""
    v_p, v_t = _diff(pred), _diff(target)
    edge = frames_per_token - 1
    loss = F.l1_loss(v_p[:, edge::frames_per_token], v_t[:, edge::frames_per_token])
    a_p, a_t = _diff(v_p), _diff(v_t)
    for first in (edge - 1, edge):  # second differences over frames (first .. first + 2)
        loss = loss + F.l1_loss(a_p[:, first::frames_per_token], a_t[:, first::frames_per_token])
    return loss


class RegionTokenizer(nn.Module):
    def __init__(self, region: str, cfg: TokenizerConfig) -> None:
        super().__init__()
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; regions are {REGIONS}")
        self.region, self.cfg, self.dim = region, cfg, REGION_DIMS[region]
        self.encoder = MotionEncoder(self.dim, cfg)
        self.decoder = CausalMotionDecoder(self.dim, cfg)
        self.pre = nn.Linear(cfg.latent_dim, cfg.code_dim)
        self.quantizer: EMAQuantizer | PairQuantizer
        if region in cfg.pair_regions:
            self.quantizer = PairQuantizer(cfg.codebook_size, cfg.code_dim, cfg.pair_kind, cfg.ema_decay,
                                           cfg.dead_code_threshold)
        else:
            self.quantizer = EMAQuantizer(cfg.codebook_size, cfg.code_dim, cfg.ema_decay,
                                          cfg.dead_code_threshold)
        self.post = nn.Sequential(nn.Linear(cfg.code_dim, cfg.hidden), nn.GELU(),
                                  nn.Linear(cfg.hidden, cfg.latent_dim))
        # linear part of W; with P it starts as a PCA projection/back-projection (init_stage2)
        self.skip = nn.Linear(cfg.code_dim, cfg.latent_dim)
        nn.init.zeros_(self.post[-1].weight)
        nn.init.zeros_(self.post[-1].bias)

    # --------------------------------------------------------------- stages
    def stage1_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def stage2_parameters(self) -> list[nn.Parameter]:
        return [*self.pre.parameters(), *self.post.parameters(), *self.skip.parameters()]

    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        """What `stage` trains: 1 encoder + decoder, 2 projection + W (codebook by EMA), 3 decoder."""
        if stage == 1:
            return self.stage1_parameters()
        if stage == 2:
            return self.stage2_parameters()
        if stage == 3:
            return list(self.decoder.parameters())
        raise ValueError(f"stage must be 1, 2 or 3, got {stage}")

    def freeze_autoencoder(self) -> None:
        self.set_stage(2)

    @torch.no_grad()
    def init_stage2(self, x: torch.Tensor) -> None:
        """Start stage 2 from PCA of the frozen encoder's latents on training features x.

        P projects a latent onto its top `code_dim` principal directions and W's
        linear part maps back, so before any training W(P(z)) is the best linear
        rank-`code_dim` approximation of z; the codebook then quantises that space.
        """
        z = self.encoder(x).reshape(-1, self.cfg.latent_dim).double()
        mu = z.mean(0)
        _, _, vh = torch.linalg.svd(z - mu, full_matrices=False)
        u = vh[: self.cfg.code_dim]  # (code_dim, latent_dim), orthonormal rows
        self.pre.weight.copy_(u.float())
        self.pre.bias.copy_((-u @ mu).float())
        self.skip.weight.copy_(u.t().float())
        self.skip.bias.copy_(mu.float())
        # a new code space: k-means initialise the codebook on all the given latents
        self.quantizer.init_codes(self.pre(z.float()), torch.Generator().manual_seed(0))

    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """Stage 1: (B, T, D) -> reconstruction through the continuous latent."""
        return self.decoder(self.encoder(x))

    def code_to_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """W: code vectors -> the decoder's latent space."""
        return self.post(codes) + self.skip(codes)

    def quantize(self, x: torch.Tensor, update: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids, latent for the decoder, commitment loss) of features x (B, T, D)."""
        with torch.no_grad():  # the encoder is frozen in stage 2
            z = self.encoder(x)
        p = self.pre(z)
        if update and self.training:
            ids0 = self.quantizer.nearest(p.detach())
            self.quantizer.update(p, ids0)
        ids = self.quantizer.nearest(p.detach())
        codes = self.quantizer.lookup(ids)
        commit = F.mse_loss(p, codes.detach())
        codes_st = p + (codes - p).detach()
        return ids, self.code_to_latent(codes_st), commit

    # ---------------------------------------------------------- run time
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T/4) of normalised features (B, T, D)."""
        return self.quantizer.nearest(self.pre(self.encoder(x)))

    def decode(self, ids: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        """Frames (B, 4n, D) of token ids (B, n); pass a decoder state to stream."""
        return self.decoder(self.code_to_latent(self.quantizer.lookup(ids)), state)

    def init_decode_state(self, batch_size: int, device=None, dtype=None) -> StreamState:
        return self.decoder.init_state(batch_size, device, dtype)

    # --------------------------------------------------------------- losses
    def forward(self, x: torch.Tensor, stage: int = 1) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of `stage` (1: autoencoder, 2: quantiser, 3: decoder on tokens); forward so
        DDP syncs it."""
        return {1: self.stage1_loss, 2: self.stage2_loss, 3: self.stage3_loss}[stage](x)

    def set_stage(self, stage: int) -> None:
        """Make only the parameters `stage` trains require grad (DDP needs every one used)."""
        train = {id(p) for p in self.stage_parameters(stage)}
        for p in self.parameters():
            p.requires_grad_(id(p) in train)

    def stage1_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss, rec = reconstruction_loss(self.autoencode(x), x, self.cfg.velocity_weight)
        return loss, {"rec_l1": float(rec.detach())}

    def stage3_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The decoder's loss on the latents of the tokens of x (tokens and W fixed)."""
        with torch.no_grad():
            latent = self.code_to_latent(self.quantizer.lookup(self.encode(x)))
        pred = self.decoder(latent)
        loss, rec = reconstruction_loss(pred, x, self.cfg.finetune_velocity_weight,
                                        self.cfg.finetune_acceleration_weight)
        if self.cfg.finetune_boundary_weight > 0:
            loss = loss + self.cfg.finetune_boundary_weight * boundary_loss(pred, x)
        return loss, {"rec_l1": float(rec.detach())}

    def stage2_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        ids, latent, commit = self.quantize(x, update=True)
        loss, rec = reconstruction_loss(self.decoder(latent), x, self.cfg.velocity_weight)
        perplexity, used = EMAQuantizer.usage_stats(ids, self.cfg.codebook_size)
        return loss + self.cfg.commitment * commit, {
            "rec_l1": float(rec.detach()), "commit": float(commit.detach()),
            "perplexity": perplexity, "codes_used": used}


class MotionTokenizer(nn.Module):
    """The four region tokenizers."""

    def __init__(self, cfg: TokenizerConfig, regions: tuple[str, ...] = REGIONS) -> None:
        super().__init__()
        self.cfg = cfg
        self.regions = nn.ModuleDict({r: RegionTokenizer(r, cfg) for r in regions})

    def __getitem__(self, region: str) -> RegionTokenizer:
        return self.regions[region]  # type: ignore[return-value]
