"""Windows per second the data loader delivers against what a training step consumes (issue 12).

    python benchmarks/data_loader.py --data CACHE_OR_BEAT2_DIR [--workers 0 1 2] [--batches 30]

Loader: batches of the AR stages' windows (64 frames of every region's features, normalised,
+ 88 frames of 16 kHz audio + word ids; demo data settings) read from a prepared cache, in this
process (workers 0) or by DataLoader worker processes. Consumer: one optimizer step of the
experts stage (tokenizers frozen: tokenising is part of the step) at the demo and base sizes on
this CPU with one thread, measured; and an *estimate* for a GPU at the base size from the
step's FLOPs (counted with torch.utils.flop_counter on the CPU) at an assumed share of an
H100/H200's dense bf16 peak. Nothing here ran on a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

#: dense bf16 tensor-core peak of an H100/H200 SXM (FLOP/s) and the shares of it assumed reachable
GPU_PEAK = 989e12
MFU = (0.1, 0.3)


def loader_rate(ds, batch: int, batches: int, workers: int) -> float:
    """Windows per second delivered (collated batches of `batch` random windows)."""
    from torch.utils.data import DataLoader, RandomSampler

    from livegesture.train.ar_stage import _collate_with_context

    collate = _collate_with_context(ds.audio_context_frames)
    sampler = RandomSampler(ds, replacement=True, num_samples=batch * (batches + 3),
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, collate_fn=collate, num_workers=workers,
                        prefetch_factor=4 if workers else None, persistent_workers=False)
    it = iter(loader)
    for _ in range(3):           # workers started, first batches in flight
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batch * batches / (time.perf_counter() - t0)


def experts_step(size: str, ds, batch: int, steps: int) -> tuple[float, float]:
    """(seconds per optimizer step, FLOPs per step) of the experts stage at `size`."""
    from torch.utils.flop_counter import FlopCounterMode

    from livegesture.bundle import ModelBundle
    from livegesture.tokenizer import MotionTokenizer
    from livegesture.train.ar_stage import ARStage, _collate_with_context
    from livegesture.train.config import load_experiment

    cfg = load_experiment(size)
    torch.manual_seed(0)
    bundle = ModelBundle.create(cfg, MotionTokenizer(cfg.tokenizer), ds.stats)
    bundle.model.set_stage(1)
    module = ARStage(bundle.model, bundle.tokenizer, "experts").train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)
    collate = _collate_with_context(cfg.data.audio_context_frames)
    g = torch.Generator().manual_seed(1)
    batches = [collate([ds[int(i)] for i in torch.randint(len(ds), (batch,), generator=g)]) for _ in range(2)]

    def step(b) -> None:
        loss, _ = module(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])
    with FlopCounterMode(display=False) as fc:
        step(batches[1])
    flops = float(fc.get_total_flops())
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        step(batches[k % 2])
        times.append(time.perf_counter() - t0)
    return statistics.median(times), flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a prepared cache (or a BEAT2 folder, prepared into --work)")
    ap.add_argument("--work", type=Path, default=Path("runs/bench_loader"))
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from livegesture.data import RegionStats, WindowDataset
    from livegesture.train.config import load_experiment
    from livegesture.train.data import train_val_sources

    cfg = load_experiment("demo")
    ids, clips, _ = train_val_sources(a.data, cfg.data, a.work, progress=False)
    stats = RegionStats.from_moments(c.moments for c in clips)
    d = cfg.data
    ds = WindowDataset(clips, cfg.ar_window_frames, d.stride_frames, stats=stats,
                       audio_context_frames=d.audio_context_frames)
    print(f"{len(ids)} training clips, {len(ds)} windows of {cfg.ar_window_frames} frames (+{d.audio_context_frames} "
          f"frames of audio context), batch {a.batch}, one torch thread per process")
    rates = {}
    for w in a.workers:
        rates[w] = loader_rate(ds, a.batch, a.batches, w)
        print(f"loader, {w} worker process(es): {rates[w]:.0f} windows/s")
    for size in ("demo", "base"):
        sec, flops = experts_step(size, ds, a.batch, a.steps)
        need = a.batch / sec
        print(f"experts step, {size} size, CPU (measured): {sec * 1e3:.0f} ms per step of {a.batch} = "
              f"{need:.0f} windows/s consumed; loader in-process / consumption = {rates[min(rates)] / need:.1f}x; "
              f"{flops / a.batch / 1e9:.2f} GFLOP per window (forward + backward)")
        if size == "base":
            # DataLoader workers pay for sending batches between processes: rate per worker from them
            per_worker = max((r / w for w, r in rates.items() if w), default=rates[min(rates)])
            for mfu in MFU:
                gpu = mfu * GPU_PEAK / (flops / a.batch)
                print(f"  ESTIMATE, not measured: a GPU at {100 * mfu:.0f}% of {GPU_PEAK / 1e12:.0f} TFLOP/s bf16 "
                      f"would consume {gpu:.0f} windows/s, i.e. about {gpu / per_worker:.1f} loader workers "
                      f"at {per_worker:.0f} windows/s each (this CPU)")


if __name__ == "__main__":
    main()
