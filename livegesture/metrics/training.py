"""Training the FGD feature extractor on 64-frame windows of 6D poses of every clip with motion."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..train.distributed import resolve_device
from .extractor import FgdConfig, FgdExtractor, motion_to_6d


def load_pose_sequences(data_dir: str | os.PathLike, split: str | None = None,
                        progress: bool = False) -> tuple[list[str], list[np.ndarray]]:
    """(ids, 6D pose arrays (T, 330)) of every clip with motion in `data_dir`."""
    from tqdm.auto import tqdm

    from ..data import find_clips, load_clip

    clips = find_clips(data_dir, split=split, require=("motion",))
    ids, seqs = [], []
    for clip in tqdm(clips, desc="loading motion", unit="clip", disable=not progress):
        motion = load_clip(clip).motion
        if motion is None or len(motion) == 0:
            continue
        ids.append(clip.id)
        seqs.append(motion_to_6d(motion.poses))
    return ids, seqs


class WindowSampler:
    """Uniformly random windows over all clips (each valid start equally likely), seeded."""

    def __init__(self, seqs: list[np.ndarray], window: int, seed: int = 0) -> None:
        self.seqs = [s for s in seqs if len(s) >= window]
        if not self.seqs:
            longest = max((len(s) for s in seqs), default=0)
            raise DataError(f"no clip has {window} frames for a training window "
                            f"(longest: {longest})")
        self.window = window
        counts = np.array([len(s) - window + 1 for s in self.seqs], dtype=np.float64)
        self.p = counts / counts.sum()
        self.rng = np.random.default_rng(seed)

    def sample(self, batch_size: int) -> torch.Tensor:
        which = self.rng.choice(len(self.seqs), size=batch_size, p=self.p)
        out = np.empty((batch_size, self.window, self.seqs[0].shape[1]), np.float32)
        for i, k in enumerate(which):
            s = self.seqs[k]
            start = int(self.rng.integers(0, len(s) - self.window + 1))
            out[i] = s[start:start + self.window]
        return torch.from_numpy(out)


@dataclass
class TrainResult:
    path: Path
    steps: int
    clips: int
    frames: int
    first_loss: float
    final_loss: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list, repr=False)


def train_fgd_extractor(data_dir: str | os.PathLike, out_path: str | os.PathLike,
                        steps: int = 3000, batch_size: int = 32, window: int = 64,
                        lr: float = 3e-4, seed: int = 0, device: str = "auto",
                        progress: bool = True, config: FgdConfig | None = None,
                        split: str | None = None, tensorboard: bool = True,
                        log_every: int = 50) -> TrainResult:
    """Train an :class:`FgdExtractor` on random `window`-frame windows of every clip with motion
    under `data_dir` (optionally one `split`) and write it atomically to `out_path`.

    Adam, seeded (torch and window sampling), per-dimension input statistics computed
    on all frames, tqdm progress, TensorBoard scalars in ``<out stem>.runs/`` when
    `tensorboard` is true.
    """
    from tqdm.auto import tqdm

    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    if window < 4 or window % 4:
        raise ValueError(f"window must be a positive multiple of 4, got {window}")
    out_path = Path(out_path)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    ids, seqs = load_pose_sequences(data_dir, split=split, progress=progress)
    if not seqs:
        raise DataError(f"{data_dir}: no clip with motion frames")
    sampler = WindowSampler(seqs, window, seed)
    allf = np.concatenate(seqs).astype(np.float64)
    model = FgdExtractor(config)
    model.set_normalisation(allf.mean(0), allf.std(0))
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    writer = None
    if tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_path.with_name(out_path.stem + ".runs")))
        except ImportError:  # tensorboard is optional
            writer = None
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc="fgd extractor", unit="step", disable=not progress)
    ema = None
    for step in bar:
        batch = sampler.sample(batch_size).to(dev)
        loss, logs = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        logs["step"] = step
        history.append(logs)
        ema = logs["loss"] if ema is None else 0.95 * ema + 0.05 * logs["loss"]
        if step % log_every == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{ema:.4f}", rec=f"{logs['rec']:.4f}")
            if writer is not None:
                for k in ("loss", "rec", "vel"):
                    writer.add_scalar(f"fgd/{k}", logs[k], step)
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - t0
    model.eval()
    first = float(np.mean([h["loss"] for h in history[:10]]))
    final = float(np.mean([h["loss"] for h in history[-10:]]))
    info = {"clips": len(ids), "frames": int(len(allf)), "steps": steps,
            "batch_size": batch_size, "window": window, "lr": lr, "seed": seed,
            "final_loss": final, "config": asdict(model.config)}
    model.cpu().save(out_path, extra=info)
    return TrainResult(out_path, steps, len(ids), int(len(allf)), first, final, seconds, history)
