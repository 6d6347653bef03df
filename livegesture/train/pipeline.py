"""`train all`: tokenizers (stages 1, 2, 3) -> experts -> fuse, into one self-contained model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ar_stage import train_model_stage
from .config import ExperimentConfig
from .data import stage_cache
from .tokenizer_stage import train_tokenizer


def train_all(data_dir: str | Path, out: str | Path, cfg: ExperimentConfig, device: str | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Run every stage in order; each is resumable, so rerunning after a kill continues."""
    cfg.check_ar_window()  # before the tokenizers' long training, not after
    out = Path(out)
    work = out.with_name(out.name + ".work")
    tok_path = work / "tokenizer.safetensors"
    # one cache for every stage (each stage would otherwise prepare its own)
    data_dir = stage_cache(data_dir, cfg.data, work, ("motion",), progress).root
    results: dict[str, Any] = {}
    for stage in (1, 2, 3) if cfg.tokenizer_stage3.steps > 0 else (1, 2):
        results[f"tokenizer_stage{stage}"] = train_tokenizer(data_dir, tok_path, cfg, "all", stage,
                                                             device, progress)
    results["experts"] = train_model_stage(data_dir, out, cfg, "experts", tok_path, device, progress)
    results["fuse"] = train_model_stage(data_dir, out, None, "fuse", None, device, progress)
    return results
