"""Train the SVQ tokenizers (stage 1 autoencoder, stage 2 codebook) region by region."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from ..body.constants import REGIONS
from ..data import RegionStats, WindowDataset
from ..data.windows import START_GRID_FRAMES
from ..errors import ConfigError
from ..tokenizer import MotionTokenizer, TokenizerConfig
from ..tokenizer.io import load_tokenizer, save_tokenizer
from .config import ExperimentConfig
from .data import train_val_sources
from .loop import Trainer


def parse_regions(region: str) -> tuple[str, ...]:
    if region == "all":
        return REGIONS
    if region not in REGIONS:
        raise ConfigError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)} or all")
    return (region,)


def restart_stage2(tok: MotionTokenizer, cfg: TokenizerConfig, stages: dict[str, int], path: Path
                   ) -> tuple[MotionTokenizer, dict[str, int]]:
    """A tokenizer with `cfg`'s stage-2 settings (codebook size, code_dim, pair codebooks...) that keeps
    `tok`'s trained encoders and decoders; every region goes back to 'stage 1 done'. Refused once a
    decoder was fine-tuned on the old tokens (stage 3): it is no longer the stage-1 decoder."""
    tuned = sorted(r for r, s in stages.items() if int(s) >= 3)
    if tuned:
        raise ConfigError(f"{path}: the decoders of {', '.join(tuned)} were fine-tuned on the old codebook "
                          "(stage 3); train new codebooks from a stage-1 or stage-2 file, or use another --out")
    new = MotionTokenizer(cfg)
    for r in new.regions:
        new[r].encoder.load_state_dict(tok[r].encoder.state_dict())
        new[r].decoder.load_state_dict(tok[r].decoder.state_dict())
    return new, {r: min(int(s), 1) for r, s in stages.items()}


def _only_finetune_differs(a: TokenizerConfig, b: TokenizerConfig) -> bool:
    from dataclasses import replace

    return replace(a, finetune_velocity_weight=b.finetune_velocity_weight,
                   finetune_acceleration_weight=b.finetune_acceleration_weight,
                   finetune_boundary_weight=b.finetune_boundary_weight) == b


def _with_config(tok: MotionTokenizer, cfg: TokenizerConfig) -> MotionTokenizer:
    """The same trained tokenizer under a config that differs only in stage-3 loss weights."""
    new = MotionTokenizer(cfg)
    new.load_state_dict(tok.state_dict())
    return new


def _model_file(path: Path) -> tuple[Any, bool] | None:
    """(bundle, float16 weights?) when `path` is a full LiveGesture model file, else None."""
    from ..bundle import KIND, ModelBundle
    from ..modelio import load_model_file

    _, meta = load_model_file(path)
    if meta.get("kind") != KIND:
        return None
    return ModelBundle.load(path), meta.get("weights_dtype") == "float16"


def train_tokenizer(data_dir: str | Path, out: str | Path, cfg: ExperimentConfig, region: str = "all",
                    stage: int = 1, device: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train `stage` of the tokenizers of `region` and write them into the tokenizer file `out`.

    Stage 2 needs a file whose regions finished stage 1, stage 3 (decoder fine-tuning on the
    tokens) one whose regions finished stage 2. Stage 3 may also run on a full model file: its
    decoders are fine-tuned in place (the tokens, and so the AR model trained on them, stay
    valid; float16 files stay float16) and the file takes `cfg`'s clean-up settings, which are
    tuned to how the decoders join tokens. The file is rewritten
    atomically after each region; training checkpoints and TensorBoard logs go to
    ``<out>.work/`` so the same command resumes a killed run.
    """
    if stage not in (1, 2, 3):
        raise ConfigError(f"stage must be 1, 2 or 3, got {stage}")
    out = Path(out)
    work = out.with_name(out.name + ".work")
    regions = parse_regions(region)
    train_ids, train_clips, val_clips = train_val_sources(data_dir, cfg.data, work, ("motion",), progress)
    bundle, half = None, False
    if out.is_file():
        found = _model_file(out)
        if found is not None:
            if stage != 3:
                raise ConfigError(f"{out}: is a full model file; only stage 3 (the decoders, on the same "
                                  "tokens) can be trained in it")
            bundle, half = found
            tok, stats = bundle.tokenizer, bundle.stats
            stages: dict[str, int] = {r: int(s) for r, s in bundle.stages.get("tokenizer", {}).items()}
        else:
            tok, stats, meta = load_tokenizer(out)
            stages = dict(meta.get("stages", {}))
        if tok.cfg != cfg.tokenizer:
            same_stage1 = tok.cfg.stage1_fields() == cfg.tokenizer.stage1_fields()
            if stage == 3 and same_stage1 and _only_finetune_differs(tok.cfg, cfg.tokenizer):
                tok = _with_config(tok, cfg.tokenizer)  # new stage-3 loss weights on the same tokens
            elif stage != 2 or not same_stage1:
                raise ConfigError(f"{out}: was trained with a different tokenizer config; use another --out")
            else:
                tok, stages = restart_stage2(tok, cfg.tokenizer, stages, out)
            for stale in work.glob("tokenizer-*-stage2.ckpt"):  # checkpoints of the old codebooks
                stale.unlink()
    else:
        if stage > 1:
            raise ConfigError(f"{out}: no such tokenizer file; run stage 1 first")
        tok = MotionTokenizer(cfg.tokenizer)
        stats = RegionStats.from_moments(c.moments for c in train_clips)
        stages = {}
    wcfg = cfg.data
    stride = wcfg.tokenizer_stride_frames or wcfg.stride_frames
    train_set = WindowDataset(train_clips, wcfg.window_frames, stride, stats=stats, with_audio=False,
                              start_grid=START_GRID_FRAMES if stride % START_GRID_FRAMES == 0 else 1)
    val_set = (WindowDataset(val_clips, wcfg.window_frames, wcfg.stride_frames, stats=stats, with_audio=False)
               if val_clips else None)
    tcfg = {1: cfg.tokenizer_stage1, 2: cfg.tokenizer_stage2, 3: cfg.tokenizer_stage3}[stage]
    if device is not None:
        from dataclasses import replace

        tcfg = replace(tcfg, device=device)
    results: dict[str, Any] = {"train_clips": list(train_ids),
                               "val_clips": [c.id for c in val_clips], "regions": {}}
    for r in regions:
        if stages.get(r, 0) < stage - 1:
            raise ConfigError(f"{out}: region {r} has not finished stage {stage - 1}; "
                              f"run stage {stage - 1} first")
        model = tok[r]
        model.set_stage(stage)
        if stage == 2:
            torch.manual_seed(tcfg.seed)
            rng = random.Random(tcfg.seed)
            pick = rng.sample(range(len(train_set)), min(len(train_set), 1024))
            sample = torch.stack([train_set[i][r] for i in pick])
            model.init_stage2(sample)
        trainer = Trainer(model, lambda m, b, r=r: m(b[r], stage), train_set, tcfg, work,
                          name=f"tokenizer-{r}-stage{stage}", val_set=val_set,
                          params=[p for p in model.parameters() if p.requires_grad], progress=progress)
        res = trainer.fit()
        model.to("cpu").eval()
        stages[r] = max(stages.get(r, 0), stage)
        if trainer.dist.is_main and bundle is not None:
            from dataclasses import replace

            bundle.tokenizer, bundle.stages["tokenizer"] = tok, dict(stages)
            bundle.config = replace(bundle.config, tokenizer=tok.cfg, cleanup=cfg.cleanup)  # tuned to the new joins
            bundle.save(out, half=half)
        elif trainer.dist.is_main:
            save_tokenizer(out, tok, stats, stages, extra={"config": cfg.name,
                                                           "train_clips": results["train_clips"]})
        hist = res["history"]
        k = max(1, len(hist) // 20)
        results["regions"][r] = {
            "first_loss": sum(v for _, v in hist[:k]) / k if hist else None,
            "last_loss": sum(v for _, v in hist[-k:]) / k if hist else None,
            "val": res["val"], "seconds": res["seconds"], "resumed": res["resumed"]}
    return results
