"""LiveGestureModel: shared audio encoder + 4 region experts + xAR-Fuse, one code path for all uses.

Training (teacher forcing), offline generation and streaming all run
:meth:`LiveGestureModel.step`'s core on a preallocated state: teacher forcing is one
call with all T positions on a fresh state, streaming is one call per token, offline
generation is the streaming loop. So streaming == offline by construction.

State (:meth:`LiveGestureModel.init_state`), every tensor batch-first over *sessions*:

* ``audio``: the AudioEncoder's state (B sessions);
* ``streams`` (B, g) bool, all False: its second size is the number of guidance streams
  (g = 2 with classifier-free guidance: conditional then unconditional);
* ``experts``: the caches of all experts in one expert-shaped state, tensors (B, g*R, ...) = B*g*R
  streams ordered (session, guidance stream, region), so that the grouped inference path
  (:mod:`.grouped`) runs the 4 experts' attention as one batch; the per-expert path uses strided
  views of one region's rows;
* ``fuse``: the fuse's caches, tensors (B, g*R, ...) = B*g*R streams (regions folded in), except
  its audio rings, (B, g, ...): the R region streams of a session share one;
* with guidance, the audio rings (keys, values, positions of every expert's and the fuse's audio
  cross-attention) are kept for the conditional stream only, (B, R, ...) and (B, 1, ...): the
  unconditional stream hears the null audio at every frame, so its audio cross-attention is a
  constant (docs/design.md §6, "The null stream's audio cross-attention"). Their counters keep
  every stream's row.

Grouping the guidance/region streams under the session dimension keeps the generic
``state_select / state_reset_ / state_assign_ / state_clone`` usable on the whole state.
With guidance the inner modules run on 2B rows in the same batched call (row 2b is
session b's conditional stream, 2b+1 its unconditional one).

Token ids: 0 .. K-1 codes, K = BOS, K+1 = MASK.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.encoder import AudioEncoder
from ..body.constants import REGIONS
from ..streaming.attention import StreamingSelfAttention
from ..streaming.state import StreamState
from .config import FRAMES_PER_TOKEN, MaskingConfig, ModelConfig, SamplingConfig
from .expert import RegionExpert
from .fuse import XARFuse
from .grouped import GroupedExperts
from .grouped_fuse import GroupedFuse
from .layers import flat_state, group_state, region_rows
from .masking import masked_inputs, region_token_mask, shift_right, ugm_token_mask
from .sampling import TokenSampler, guide


class LiveGestureModel(nn.Module):
    """Hierarchical autoregressive speech-to-gesture token model (docs/design.md §5)."""

    def __init__(self, config: ModelConfig | None = None, masking: MaskingConfig | None = None,
                 regions: tuple[str, ...] = REGIONS):
        super().__init__()
        self.config = cfg = config or ModelConfig()
        self.masking = masking or MaskingConfig()
        self.regions = tuple(regions)
        self.audio_encoder = AudioEncoder(cfg.audio)
        # learned "no condition" audio feature (classifier-free guidance), one vector for every frame
        self.null_audio = nn.Parameter(0.02 * torch.randn(cfg.audio.dim))
        self.experts = nn.ModuleDict({r: RegionExpert(cfg, r) for r in self.regions})
        self.fuse = XARFuse(cfg, self.regions)
        # inference path: the experts as one grouped computation (a cache of stacked weights, not a module)
        self._grouped = GroupedExperts([self.experts[r] for r in self.regions])
        self._grouped_fuse = GroupedFuse(self.fuse)
        self._flat_views: dict[int, tuple[StreamState, StreamState]] = {}
        #: use the grouped expert step where allowed (no autograd, eval, no noise); False forces per-expert
        self.grouped_inference = True
        self.stage = 0  # 0: everything trains; 1: audio + experts; 2: fuse + PILOR (+ experts' MASK)

    # ------------------------------------------------------------------ ids and sizes
    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def bos_id(self) -> int:
        return self.config.codebook_size

    @property
    def mask_id(self) -> int:
        return self.config.codebook_size + 1

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    def _pdd(self, device, dtype) -> tuple[torch.device, torch.dtype]:
        p = self.null_audio
        return (torch.device(device) if device is not None else p.device), (dtype or p.dtype)

    # ------------------------------------------------------------------ training stages
    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        """Parameters trained in `stage` (1: audio encoder, experts, null audio; 2: fuse incl. PILOR and
        the experts' MASK embeddings, the only expert parameters stage 1 never sees)."""
        if stage == 1:
            return [self.null_audio, *self.audio_encoder.parameters(),
                    *(p for e in self.experts.values() for n, p in e.named_parameters() if n != "mask_emb")]
        if stage == 2:
            return [*self.fuse.parameters(), *(e.mask_emb for e in self.experts.values())]
        raise ValueError(f"stage must be 1 or 2, got {stage}")

    def set_stage(self, stage: int) -> None:
        """Make exactly the parameters of `stage` require grad; in stage 2 the frozen audio encoder and
        experts also stay in eval mode (no dropout) whatever ``train()`` is called with."""
        keep = {id(p) for p in self.stage_parameters(stage)}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        self.stage = stage
        self.train(self.training)

    def train(self, mode: bool = True) -> "LiveGestureModel":
        super().train(mode)
        if self.stage == 2:
            self.audio_encoder.eval()
            self.experts.eval()
        return self

    # ------------------------------------------------------------------ streaming
    def init_state(self, batch_size: int, guidance: bool = False, device=None, dtype=None) -> StreamState:
        """Preallocated, constant-size state of `batch_size` fresh sessions (see module doc)."""
        device, dtype = self._pdd(device, dtype)
        g = 2 if guidance else 1
        R = self.num_regions
        experts = self.experts[self.regions[0]].init_state(batch_size * g * R, device, dtype)
        fuse = self.fuse.init_state(batch_size * g * R, device, dtype)
        if guidance:
            # the unconditional stream's audio rings would only ever hold the null audio's keys and
            # values: its cross-attention is that constant (docs/design.md §6), so no ring is kept for it
            for i, block in enumerate(self.experts[self.regions[0]].blocks):
                experts[f"blocks.{i}"]["cross"].update(block.cross._cache(batch_size * R, device, dtype))
            for i, block in enumerate(self.fuse.blocks):
                fuse[f"blocks.{i}"]["cross"].update(block.cross._cache(batch_size, device, dtype))
        return {
            "audio": self.audio_encoder.init_state(batch_size, device, dtype),
            "streams": torch.zeros(batch_size, g, dtype=torch.bool, device=device),
            "experts": group_state(experts, batch_size),
            "fuse": group_state(fuse, batch_size),
        }

    def encode_audio(self, samples: torch.Tensor, state: StreamState,
                     words: torch.Tensor | None = None) -> torch.Tensor:
        """Push audio samples (B, N) into the sessions' audio encoder; returns the (B, F, d_audio)
        features of the 30 Hz frames completed by this call (plus word embeddings when `words`
        (B, F) ids are given)."""
        feats = self.audio_encoder.step(samples, state["audio"])  # type: ignore[arg-type]
        if words is not None:
            feats = self.audio_encoder.embed_words(feats, words)
        return feats

    def step(self, state: StreamState, audio_feats: torch.Tensor, prev_tokens: torch.Tensor,
             guidance_scale: float = 1.0, return_local: bool = False
             ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Advance n token positions of every region and the fuse.

        ``audio_feats`` (B, 4n, d_audio): features of frames 4 tau .. 4 tau + 4n - 1;
        ``prev_tokens`` (B, R, n): the inputs of those positions (token tau - 1, BOS = K at
        tau = 0, MASK = K + 1 allowed). Returns fused logits (B, R, n, K) (guided with
        `guidance_scale` when the state has the unconditional stream), and with
        `return_local` also the local logits (expert heads on the PILOR output)."""
        fused, local = self._run(state, audio_feats, prev_tokens)
        if state["streams"].shape[1] == 2:  # type: ignore[union-attr]
            fused, local = self._guided(fused, prev_tokens.shape[0], guidance_scale), \
                self._guided(local, prev_tokens.shape[0], guidance_scale)
        return (fused, local) if return_local else fused

    @staticmethod
    def _guided(logits: torch.Tensor, B: int, scale: float) -> torch.Tensor:
        """Classifier-free guidance of (B*2, ...) logits whose odd rows are the unconditional stream."""
        two = logits.view(B, 2, *logits.shape[1:])
        return guide(two[:, 0], two[:, 1], scale)

    def step_flat(self, streams: torch.Tensor, experts: StreamState, fuse: StreamState,
                  audio_feats: torch.Tensor, prev_tokens: torch.Tensor, guidance_scale: float = 1.0
                  ) -> torch.Tensor:
        """:meth:`step`'s fused logits on the flat state views of the grouped inference path
        (:meth:`flat_views`; weights already built, n <= the attention block): a function of tensors
        only, with no Python-side cache, so that ``torch.compile`` traces it once for every session
        of a shape (:mod:`livegesture.engine.compiled`). :meth:`step` runs this same code eagerly."""
        g = streams.shape[1]
        feats, inputs = self._conditioned(audio_feats, prev_tokens, g)
        fused, _ = self._run_grouped(experts, fuse, feats, inputs, self.null_audio if g == 2 else None)
        return self._guided(fused, prev_tokens.shape[0], guidance_scale) if g == 2 else fused

    def flat_views(self, state: StreamState) -> tuple[StreamState, StreamState]:
        """The (experts, fuse) flat views that :meth:`step_flat` takes, cached per state."""
        return self._flat(state["experts"]), self._flat(state["fuse"])  # type: ignore[arg-type]

    def _conditioned(self, feats: torch.Tensor, inputs: torch.Tensor, g: int,
                     drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and inputs of the g streams of each session (B*g rows): stream 1 of a guided
        state, and the `drop` sessions (CFG dropout), hear the null audio."""
        B = inputs.shape[0]
        null = torch.zeros(B, g, dtype=torch.bool, device=feats.device)
        if g == 2:
            null[:, 1] = True
        if drop is not None:
            null = null | drop.to(device=feats.device, dtype=torch.bool)[:, None]
        null = null.view(B * g)
        if g > 1:
            feats = feats.repeat_interleave(g, dim=0)
            inputs = inputs.repeat_interleave(g, dim=0)
        return torch.where(null[:, None, None], self.null_audio.to(feats.dtype), feats), inputs

    def _run_grouped(self, est: StreamState, fst: StreamState, feats: torch.Tensor, inputs: torch.Tensor,
                     null: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(fused, local) logits on the inference path: stacked / fused weights, one set of RoPE
        tables per step. `null`: the null audio when the rows are guided pairs whose second row hears
        only it (its audio keys and values are memoised, and its audio attention is their null values:
        the state keeps no audio rings for it)."""
        N, R, n = inputs.shape
        K = self.codebook_size
        tables = self._grouped.tables(est, n, feats.dtype)
        hg = self._grouped.step(inputs, est, feats, tables, null)  # (R, N*n, dim)
        h = self._grouped_fuse.apply_pilor(hg.view(R, N, n, -1).transpose(0, 1))  # (B*g, R, n, dim)
        local = self._grouped.heads(h.transpose(0, 1).reshape(R, N * n, -1)).view(R, N, n, K).transpose(0, 1)
        fused = self._grouped_fuse.step(h, fst, feats, tables, null)
        if self.config.fuse_residual:
            fused = fused + local
        return fused, local

    def _run(self, state: StreamState, feats: torch.Tensor, inputs: torch.Tensor,
             drop: torch.Tensor | None = None, noise_std: float = 0.0,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The one forward: (fused, local) logits (B*g, R, n, K) for all streams of the state.

        `drop` (B,) bool: sessions whose condition is replaced by the null audio (CFG dropout)."""
        B, R, n = inputs.shape
        streams: torch.Tensor = state["streams"]  # type: ignore[assignment]
        if streams.shape[0] != B or R != self.num_regions:
            raise ValueError(f"inputs {tuple(inputs.shape)} do not match a state of {streams.shape[0]} "
                             f"sessions and {self.num_regions} regions")
        if feats.shape[:2] != (B, FRAMES_PER_TOKEN * n):
            raise ValueError(f"audio_feats {tuple(feats.shape)} must be (B={B}, 4n={FRAMES_PER_TOKEN * n}, d)")
        g = streams.shape[1]
        K = self.codebook_size
        if n == 0:
            empty = feats.new_zeros(B * g, R, 0, K)
            return empty, empty
        feats, inputs = self._conditioned(feats, inputs, g, drop)
        grouped = (self.grouped_inference and not torch.is_grad_enabled() and not self.experts.training
                   and noise_std == 0 and n <= StreamingSelfAttention.block_size)
        if g == 2 and (not grouped or drop is not None):
            raise ValueError("a guided state steps on the grouped inference path only (no autograd, "
                             "eval mode, no embedding noise, no condition dropout, at most "
                             f"{StreamingSelfAttention.block_size} positions per call): it keeps no "
                             "audio rings for its unconditional stream")
        if grouped:
            return self._run_grouped(self._flat(state["experts"]), self._flat(state["fuse"]),  # type: ignore[arg-type]
                                     feats, inputs, self.null_audio if g == 2 else None)
        est = flat_state(state["experts"])  # type: ignore[arg-type]
        hs = [self.experts[r].step(inputs[:, i], region_rows(est, i, R), feats, noise_std, generator)
              for i, r in enumerate(self.regions)]
        h = self.fuse.apply_pilor(torch.stack(hs, dim=1))  # (B*g, R, n, dim)
        local = torch.stack([self.experts[r].head(h[:, i]) for i, r in enumerate(self.regions)], dim=1)
        fused = self.fuse.step(h, flat_state(state["fuse"]), feats)  # type: ignore[arg-type]
        if self.config.fuse_residual:
            fused = fused + local
        return fused, local

    def freeze_inference_weights(self, frozen: bool = True) -> None:
        """Stop (or resume) checking, every step, whether a parameter changed since the stacked /
        fused inference copies were built: for an engine that never changes the weights. While frozen,
        a parameter change is NOT seen by the grouped inference path (unfreeze, step, freeze again)."""
        for cache in (self._grouped._cache, self._grouped_fuse._cache):
            cache.frozen = frozen

    def use_stream_kernel(self, on: bool = True) -> None:
        """Let a compiled :meth:`step_flat` run its float32 products through the streaming kernel
        (:mod:`.stream_kernel`, loaded by the caller); the eager step is unchanged. The tile-packed
        copies (as many bytes again as the float32 products) are made by the next eager step."""
        self._grouped.use_stream_kernel(on)
        self._grouped_fuse.use_stream_kernel(on)

    @property
    def inference_precision(self) -> str:
        """Precision of the grouped inference path's matrix products (``float32`` unless set)."""
        return self._grouped.precision

    def set_inference_precision(self, precision: str) -> None:
        """``float32`` (default; exact, what every equality test uses) or ``int8``: weight-only int8
        matrix products in the grouped inference step (:mod:`.quant`: the weights rounded to 8 bits per
        output channel, the products' rows and results to bfloat16). Training and the per-module path
        stay float32. Raises :class:`~livegesture.errors.LiveGestureError` where this torch has no int8
        kernel."""
        from ..errors import LiveGestureError
        from .quant import check_precision, int8_available

        check_precision(precision)
        if precision == "int8" and not int8_available():
            raise LiveGestureError(f"precision int8 needs torch._weight_int8pack_mm, which torch "
                                   f"{torch.__version__} lacks")
        self._grouped.set_precision(precision)
        self._grouped_fuse.set_precision(precision)

    def inference_weight_nbytes(self) -> int:
        """Bytes of weights one grouped step reads: the experts' stacked copies (without the token
        tables, of which a step reads a row per region), the fuse's linears, adapters and heads (float32
        or int8), and the remaining small parameters of the fuse (norms, region embedding)."""
        g, f = self._grouped, self._grouped_fuse
        g.refresh()
        f.refresh()
        experts = g.weight_nbytes() - g.w["tok"].numel() * g.w["tok"].element_size()
        if not g.linear_heads:
            experts += sum(p.numel() * p.element_size() for e in self.experts.values() for p in e.head.parameters())
        # every Linear of the fuse is read through the copies (or, for non-linear heads, counted below)
        lin_params = {id(p) for m in self.fuse.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters()}
        rest = sum(p.numel() * p.element_size() for p in self.fuse.parameters() if id(p) not in lin_params)
        if not f.linear_heads:
            rest += sum(p.numel() * p.element_size() for p in self.fuse.classifiers.parameters())
        return experts + f.weight_nbytes() + rest

    def _flat(self, sub: StreamState) -> StreamState:
        """:func:`flat_state` of a state the engine passes step after step, built once (inference only:
        training may replace a state's tensors, e.g. ``state_detach_``)."""
        hit = self._flat_views.get(id(sub))
        if hit is not None and hit[0] is sub:
            return hit[1]
        if len(self._flat_views) >= 16:
            self._flat_views.pop(next(iter(self._flat_views)))
        flat = flat_state(sub)
        self._flat_views[id(sub)] = (sub, flat)  # holds `sub`, so its id stays unique while cached
        return flat

    # ------------------------------------------------------------------ offline / training
    def audio_features(self, audio: torch.Tensor, words: torch.Tensor | None = None,
                       context_frames: int = 0) -> torch.Tensor:
        """Offline features (B, W, d_audio) of window audio (B, S) that starts `context_frames` frames
        before the window (WindowDataset's ``audio_context_frames``; those frames are dropped)."""
        feats = self.audio_encoder(audio.to(self.null_audio.dtype))[:, context_frames:]
        if words is not None:
            feats = self.audio_encoder.embed_words(feats, words[:, :feats.shape[1]])
        return feats

    def teacher_forced(self, tokens: torch.Tensor, audio: torch.Tensor | None = None,
                       words: torch.Tensor | None = None, *, feats: torch.Tensor | None = None,
                       context_frames: int = 0, inputs: torch.Tensor | None = None,
                       drop: torch.Tensor | None = None, noise: bool = False,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Teacher-forced logits of tokens (B, R, T): ``{"fused", "local"}`` (B, R, T, K).

        Audio is raw window audio (B, S) (or precomputed `feats` (B, >= 4T, d_audio)); `inputs`
        overrides the shifted tokens (masked inputs); `drop` (B,) drops the condition; `noise` adds
        the configured embedding noise. Runs the streaming core once on a fresh state."""
        B, R, T = tokens.shape
        if feats is None:
            if audio is None:
                raise ValueError("give audio or feats")
            feats = self.audio_features(audio, words, context_frames)
        if feats.shape[1] < FRAMES_PER_TOKEN * T:
            raise ValueError(f"{feats.shape[1]} audio frames for {T} tokens (need {FRAMES_PER_TOKEN * T})")
        feats = feats[:, :FRAMES_PER_TOKEN * T]
        if inputs is None:
            inputs = shift_right(tokens, self.bos_id)
        state = self.init_state(B, guidance=False, device=feats.device, dtype=feats.dtype)
        fused, local = self._run(state, feats, inputs, drop,
                                 self.config.embed_noise_std if noise else 0.0, generator)
        return {"fused": fused, "local": local}

    def _condition(self, batch: Mapping[str, Any], generator: torch.Generator | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training audio features (text dropped per sequence) and the CFG drop mask.

        The window audio must give exactly 4T frames once ``audio_context_frames`` are dropped: a
        missing context count would otherwise shift every feature silently."""
        audio = batch["audio"]
        B = audio.shape[0]
        dev = self.null_audio.device
        words = batch.get("words") if self.config.text_vocab_size > 0 else None
        if words is not None and self.training and self.config.text_drop_prob > 0:
            keep = torch.rand(B, generator=generator, device=dev) >= self.config.text_drop_prob
            words = words.to(dev) * keep[:, None].to(words.dtype)
        ctx = int(batch.get("audio_context_frames", 0))
        audio = audio.to(dev)
        if self.training and self.config.audio_gain_db > 0:
            db = (2 * torch.rand(B, 1, generator=generator, device=dev) - 1) * self.config.audio_gain_db
            audio = audio * torch.pow(10.0, db / 20).to(audio.dtype)
        feats = self.audio_features(audio, words, ctx)
        T = batch["tokens"].shape[-1]
        if feats.shape[1] != FRAMES_PER_TOKEN * T:
            raise ValueError(f"the audio gives {feats.shape[1]} frames after {ctx} context frames, the tokens "
                             f"need {FRAMES_PER_TOKEN * T}: window audio of ceil(W*16000/30) samples (plus "
                             f"batch['audio_context_frames'] of context) is expected")
        if self.training:
            feats = self._corrupt_audio(feats, generator)
        drop = None
        if self.training and self.config.cond_drop_prob > 0:
            drop = torch.rand(B, generator=generator, device=dev) < self.config.cond_drop_prob
        return feats, drop

    def _corrupt_audio(self, feats: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Training-time audio feature dropout and Gaussian noise (``audio_feat_dropout``,
        ``audio_noise_std``): the condition must stay useful without pinning down clip positions."""
        c = self.config
        if c.audio_feat_dropout > 0:
            keep = torch.rand(feats.shape, generator=generator, device=feats.device) >= c.audio_feat_dropout
            feats = feats * keep.to(feats.dtype) / (1.0 - c.audio_feat_dropout)
        if c.audio_noise_std > 0:
            feats = feats + c.audio_noise_std * torch.randn(feats.shape, generator=generator, device=feats.device,
                                                            dtype=feats.dtype)
        return feats

    def expert_loss(self, region: str, batch: Mapping[str, Any],
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 1: cross-entropy of one expert (teacher forcing, embedding noise and CFG dropout in
        training mode). `batch`: ``tokens`` (B, R, T) (or (B, T) of this region), ``audio`` (B, S),
        optional ``words`` (B, W) and ``audio_context_frames``."""
        return self.experts_loss(batch, (region,), generator)

    def experts_loss(self, batch: Mapping[str, Any], regions: Sequence[str] | None = None,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 1 for several experts at once: the mean of their independent cross-entropies, with the
        shared audio features computed once (each expert only ever sees its own region's tokens)."""
        regions = tuple(regions or self.regions)
        tokens = batch["tokens"].to(self.null_audio.device)
        if tokens.dim() == 2:
            if len(regions) != 1:
                raise ValueError("tokens (B, T) of one region need exactly one region")
            tokens = tokens[:, None]
            rows = [0]
        else:
            rows = [self.regions.index(r) for r in regions]
        T = tokens.shape[-1]
        feats, drop = self._condition(batch, generator)
        feats = feats[:, :FRAMES_PER_TOKEN * T]
        if drop is not None:
            feats = torch.where(drop[:, None, None], self.null_audio.to(feats.dtype), feats)
        noise = self.config.embed_noise_std if self.training else 0.0
        ls = self.config.label_smoothing if self.training else 0.0
        losses, metrics = [], {}
        for r, i in zip(regions, rows):
            expert = self.experts[r]
            state = expert.init_state(tokens.shape[0], feats.device, feats.dtype)
            h = expert.step(shift_right(tokens[:, i], self.bos_id), state, feats, noise, generator)
            ce = F.cross_entropy(expert.head(h).flatten(0, 1), tokens[:, i].flatten(), label_smoothing=ls)
            losses.append(ce)
            metrics[f"ce_{r}"] = float(ce.detach())
        loss = torch.stack(losses).mean()
        metrics["loss"] = float(loss.detach())
        return loss, metrics

    def loss(self, batch: Mapping[str, Any], step: int = 0,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Stage 2: ``L_AR = lambda_local * CE(local) + lambda_fuse * CE(fused)`` on corrupted inputs.

        In training mode: CFG dropout (per sequence, shared by both passes), UGM (the fused
        probabilities of the true tokens come from a no-grad teacher-forced pass of the current
        model on the clean inputs under the same condition and without noise; the
        ``masking.num_masked(step, T)`` least likely history tokens per sequence and region become
        MASK), RM, and embedding noise. Targets are the clean tokens. `batch` as for
        :meth:`expert_loss` with ``tokens`` (B, R, T)."""
        tokens = batch["tokens"].to(self.null_audio.device)
        B, R, T = tokens.shape
        feats, drop = self._condition(batch, generator)
        feats = feats[:, :FRAMES_PER_TOKEN * T]
        token_mask = torch.zeros(B, R, T, dtype=torch.bool, device=tokens.device)
        n_mask = self.masking.num_masked(step, T) if self.training else 0
        if n_mask > 0:
            with torch.no_grad():
                clean = self.teacher_forced(tokens, feats=feats, drop=drop)["fused"]
                logp = clean.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
            token_mask |= ugm_token_mask(logp, n_mask)
        if self.training and self.masking.region_prob > 0:
            token_mask |= region_token_mask(B, R, T, self.masking.region_prob, generator, tokens.device)
        inputs = masked_inputs(tokens, token_mask, self.bos_id, self.mask_id)
        out = self.teacher_forced(tokens, feats=feats, inputs=inputs, drop=drop, noise=self.training,
                                  generator=generator)
        K = self.codebook_size
        ls = self.config.label_smoothing if self.training else 0.0
        l_local = F.cross_entropy(out["local"].reshape(-1, K), tokens.reshape(-1), label_smoothing=ls)
        l_fuse = F.cross_entropy(out["fused"].reshape(-1, K), tokens.reshape(-1), label_smoothing=ls)
        loss = self.config.lambda_local * l_local + self.config.lambda_fuse * l_fuse
        return loss, {"loss": float(loss.detach()), "ce_local": float(l_local.detach()),
                      "ce_fuse": float(l_fuse.detach()), "masked_frac": float(token_mask.float().mean())}

    def forward(self, batch: Mapping[str, Any], stage: int = 2, step: int = 0,
                regions: Sequence[str] | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of `stage` (1: :meth:`experts_loss` over `regions`, all by default; 2: :meth:`loss`),
        as ``forward`` so that DDP synchronises it. Stage 1 with a subset of regions leaves the other
        experts' parameters unused (DDP then needs ``find_unused_parameters``)."""
        if stage == 1:
            return self.experts_loss(batch, regions, generator)
        if stage == 2:
            return self.loss(batch, step, generator)
        raise ValueError(f"stage must be 1 or 2, got {stage}")

    def bos_inputs(self, batch_size: int, device=None) -> torch.Tensor:
        """The inputs (B, R, 1) of position 0 of every session: BOS for every region."""
        return torch.full((batch_size, self.num_regions, 1), self.bos_id, dtype=torch.long,
                          device=device if device is not None else self.null_audio.device)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate_tokens(self, audio: torch.Tensor, seed: int | Sequence[int] = 0, *,
                        sampling: SamplingConfig, words: torch.Tensor | None = None) -> torch.Tensor:
        """Offline generation: tokens (B, R, T), T = frames // 4 of audio (B, S), by exactly the
        streaming loop (audio encoder step, then one :meth:`step` per token). `seed`: one per
        session, or one int used by every session (each session's stream is then what it would
        be alone with that seed). `sampling` has no default: pass the model file's
        (``bundle.config.sampling``, what the engine, the CLI and ``evaluate`` use), so that no
        path samples differently by omission (a benchmark once drew at temperature 1 / top-p 1)."""
        B = audio.shape[0]
        seeds = [int(seed)] * B if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != B:
            raise ValueError(f"{len(seeds)} seeds for {B} sessions")
        state = self.init_state(B, guidance=sampling.guided)
        sampler = TokenSampler(sampling, seeds, self.null_audio.device)
        feats = self.encode_audio(audio.to(self.null_audio.device), state, words)
        T = feats.shape[1] // FRAMES_PER_TOKEN
        prev = self.bos_inputs(B, feats.device)
        out = torch.empty(B, self.num_regions, T, dtype=torch.long, device=feats.device)
        for tau in range(T):
            logits = self.step(state, feats[:, FRAMES_PER_TOKEN * tau:FRAMES_PER_TOKEN * (tau + 1)], prev,
                               sampling.guidance_scale)
            tok = sampler.sample(logits[:, :, 0])  # type: ignore[index]
            out[:, :, tau] = tok
            prev = tok[:, :, None]
        return out


def batch_tokens(tokenizers: Mapping[str, Any], batch: Mapping[str, torch.Tensor],
                 regions: Sequence[str] = REGIONS) -> torch.Tensor:
    """Tokens (B, R, W/4) of a WindowDataset batch's region features through each region's
    tokenizer ``encode`` (frozen SVQ)."""
    return torch.stack([tokenizers[r].encode(batch[r]) for r in regions], dim=1)
