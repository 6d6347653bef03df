"""Train the hierarchical AR model: stage 'experts' (audio encoder + region experts) and
stage 'fuse' (xAR-Fuse with PILOR on the frozen experts), then measure held-out token NLL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..body.constants import REGIONS
from ..data import Vocabulary, WindowDataset
from ..data.windows import word_counts
from ..errors import CheckpointError, ConfigError
from ..model import LiveGestureModel, batch_tokens
from ..tokenizer import MotionTokenizer
from .config import ExperimentConfig
from .data import train_val_sources
from .loop import Trainer


class ARStage(nn.Module):
    """Frozen tokenizers + the AR model; forward returns the stage's loss (so DDP can wrap it)."""

    def __init__(self, model: LiveGestureModel, tokenizer: MotionTokenizer, stage: str,
                 regions: tuple[str, ...] = REGIONS) -> None:
        super().__init__()
        self.model, self.tokenizer, self.stage, self.regions = model, tokenizer, stage, regions
        for p in tokenizer.parameters():
            p.requires_grad_(False)
        self.step_holder = [0]

    def train(self, mode: bool = True) -> "ARStage":
        super().train(mode)
        self.tokenizer.eval()
        return self

    def prepare(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            tokens = batch_tokens(self.tokenizer.regions, batch)
        return {**batch, "tokens": tokens}

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        b = self.prepare(batch)
        if self.stage == "experts":  # the shared audio is encoded once for all experts
            return self.model.experts_loss(b, self.regions)
        return self.model.loss(b, step=self.step_holder[0])


def build_vocab(clips, cfg: ExperimentConfig) -> Vocabulary | None:
    if not cfg.data.use_text:
        return None
    counts = word_counts(clips)
    if not counts:
        raise ConfigError("data.use_text is on but the training clips have no TextGrid words")
    return Vocabulary.from_counts(counts, min_count=cfg.data.vocab_min_count)


def make_datasets(bundle_stats, vocab, train_clips, val_clips, cfg: ExperimentConfig):
    d = cfg.data
    kw = dict(window_frames=cfg.ar_window_frames, stride_frames=d.stride_frames, stats=bundle_stats,
              vocab=vocab, audio_context_frames=d.audio_context_frames)
    train = WindowDataset(train_clips, **kw)
    val = WindowDataset(val_clips, **kw) if val_clips else None
    return train, val


def _collate_with_context(ctx: int):
    from torch.utils.data import default_collate

    def collate(items):
        out = default_collate(items)
        out["audio_context_frames"] = ctx
        return out

    return collate


FUSE_SECTIONS = ("fuse", "masking")


def with_fuse_overrides(cfg: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    """`cfg` with dotted `overrides` in the fuse stage's own sections (``fuse.*``, ``masking.*``):
    the experts of the file are trained, so nothing else may change."""
    from ..config import apply_overrides, from_dict, to_dict

    for key in overrides:
        if key.split(".")[0] not in FUSE_SECTIONS or "." not in key:
            raise ConfigError(f"--set {key}: training the fuse can change only "
                              f"{' / '.join(s + '.*' for s in FUSE_SECTIONS)} settings")
    return from_dict(ExperimentConfig, apply_overrides(to_dict(cfg), dict(overrides)))


def train_model_stage(data_dir: str | Path, out: str | Path, cfg: ExperimentConfig | None = None,
                      stage: str = "experts", tokenizer_path: str | Path | None = None,
                      device: str | None = None, progress: bool = True,
                      overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train `stage` ('experts' or 'fuse') into the model file `out`.

    'experts' starts a model file from a tokenizer file (`tokenizer_path`) unless `out`
    exists; 'fuse' needs `out` with trained experts, and takes dotted `overrides` of its own
    settings (:func:`with_fuse_overrides`), kept in the file. Resumable like every stage.
    """
    from ..bundle import ModelBundle
    from ..tokenizer.io import load_tokenizer

    if stage not in ("experts", "fuse"):
        raise ConfigError(f"stage must be 'experts' or 'fuse', got {stage!r}")
    if overrides and stage != "fuse":
        raise ConfigError("overrides of a stage's settings are for 'fuse'; give the experts a config instead")
    out = Path(out)
    work = out.with_name(out.name + ".work")
    if out.is_file():
        bundle = ModelBundle.load(out)
        if cfg is not None and cfg != bundle.config:
            raise ConfigError(f"{out}: was created with a different config; use another --out "
                              "or drop --config to continue with the file's own")
        if overrides and stage == "fuse":
            bundle.config = with_fuse_overrides(bundle.config, overrides)
        cfg = bundle.config
    else:
        if stage == "fuse":
            raise ConfigError(f"{out}: no such model file; train the experts first")
        if tokenizer_path is None:
            raise ConfigError("training the experts of a new model needs --tokenizer FILE")
        if cfg is None:
            raise ConfigError("training a new model needs a config")
        tok, stats, tmeta = load_tokenizer(tokenizer_path)
        if tok.cfg != cfg.tokenizer:
            raise CheckpointError(f"{tokenizer_path}: tokenizer config differs from the experiment config")
        unfinished = [r for r in REGIONS if int(tmeta.get("stages", {}).get(r, 0)) < 2]
        if unfinished:
            raise ConfigError(f"{tokenizer_path}: region(s) {', '.join(unfinished)} have not finished "
                              "tokenizer stage 2")
        bundle = ModelBundle.create(cfg, tok, stats, tokenizer_stages=tmeta.get("stages"))
    if stage == "fuse" and not bundle.stages.get("experts"):
        raise ConfigError(f"{out}: the experts have not been trained yet")
    try:
        cfg.check_ar_window()
    except ConfigError as exc:
        if not out.is_file():
            raise
        # an existing file (e.g. from before the rule): its experts were trained on these windows
        raise ConfigError(f"{out}: its AR training windows ({cfg.ar_window_frames} frames) do not reach past "
                          f"its {cfg.model.window_tokens}-token attention window, so its experts never trained "
                          "the positions a stream uses; train a new model file (its tokenizer can be reused) "
                          "with data.ar_window_frames 0") from exc
    train_ids, train_clips, val_clips = train_val_sources(data_dir, cfg.data, work, progress=progress)
    if bundle.vocab is None and cfg.data.use_text:
        bundle.vocab = build_vocab(train_clips, cfg)
        if bundle.model.config.text_vocab_size != len(bundle.vocab):
            # the text embedding is sized by the vocabulary found in the training data
            new_model_cfg = replace(cfg.model, text_vocab_size=len(bundle.vocab))
            cfg = replace(cfg, model=new_model_cfg)
            bundle.config = cfg
            bundle.model = LiveGestureModel(new_model_cfg, cfg.masking)
    train_set, val_set = make_datasets(bundle.stats, bundle.vocab, train_clips, val_clips, cfg)
    tcfg = cfg.experts if stage == "experts" else cfg.fuse
    if device is not None:
        tcfg = replace(tcfg, device=device)
    bundle.model.set_stage(1 if stage == "experts" else 2)
    module = ARStage(bundle.model, bundle.tokenizer, stage)
    holder: dict[str, Trainer] = {}

    def loss_fn(m: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        module.step_holder[0] = holder["t"].step
        return m(batch)

    trainer = Trainer(module, loss_fn, train_set, tcfg, work, name=f"model-{stage}", val_set=val_set,
                      params=[p for p in module.parameters() if p.requires_grad], progress=progress,
                      collate=_collate_with_context(cfg.data.audio_context_frames))
    holder["t"] = trainer
    res = trainer.fit()
    bundle.to("cpu")
    bundle.model.eval()
    bundle.stages[stage] = True
    bundle.meta.setdefault("train_clips", list(train_ids))
    bundle.meta.setdefault("val_clips", [c.id for c in val_clips])
    if trainer.dist.is_main:
        bundle.save(out)
    hist = res["history"]
    k = max(1, len(hist) // 20)
    return {"stage": stage, "first_loss": sum(v for _, v in hist[:k]) / k if hist else None,
            "last_loss": sum(v for _, v in hist[-k:]) / k if hist else None, "val": res["val"],
            "seconds": res["seconds"], "resumed": res["resumed"],
            "train_clips": list(train_ids), "val_clips": [c.id for c in val_clips]}


@torch.no_grad()
def heldout_token_nll(bundle, dataset: WindowDataset, batch_size: int = 16,
                      per_region: bool = False) -> dict[str, float]:
    """Mean per-token NLL (nats) on held-out windows: experts alone, the fuse, and the fuse with
    the audio condition dropped to the null embedding (does the model use the audio?). With
    `per_region`, also ``fuse/<region>`` and ``fuse_no_audio/<region>``."""
    model: LiveGestureModel = bundle.model.eval()
    module = ARStage(model, bundle.tokenizer, "fuse").eval()
    collate = _collate_with_context(bundle.config.data.audio_context_frames)
    sums = {"experts": 0.0, "fuse": 0.0, "fuse_no_audio": 0.0}
    n = 0
    K = model.codebook_size
    for i in range(0, len(dataset), batch_size):
        batch = module.prepare(collate([dataset[j] for j in range(i, min(len(dataset), i + batch_size))]))
        tokens = batch["tokens"]
        B, R, T = tokens.shape
        exp = model.experts_loss(batch)[0]
        feats = model.audio_features(batch["audio"], batch.get("words") if model.config.text_vocab_size else None,
                                     int(batch["audio_context_frames"]))
        ce = torch.nn.functional.cross_entropy
        fused = model.teacher_forced(tokens, feats=feats)["fused"]
        dropped = model.teacher_forced(tokens, feats=feats, drop=torch.ones(B, dtype=torch.bool))["fused"]
        sums["experts"] += float(exp) * B
        sums["fuse"] += float(ce(fused.reshape(-1, K), tokens.reshape(-1))) * B
        sums["fuse_no_audio"] += float(ce(dropped.reshape(-1, K), tokens.reshape(-1))) * B
        if per_region:
            for ri, r in enumerate(bundle.tokenizer.regions):
                for name, logits in (("fuse", fused), ("fuse_no_audio", dropped)):
                    key = f"{name}/{r}"
                    sums[key] = sums.get(key, 0.0) + float(ce(logits[:, ri].reshape(-1, K),
                                                               tokens[:, ri].reshape(-1))) * B
        n += B
    return {k: v / max(n, 1) for k, v in sums.items()}
