"""What evaluating costs beyond generating: `evaluate_model` over a folder vs generating the same clips.

Builds (or reuses) a flat folder of `--copies` links to real BEAT2 sample clips under new ids (about
25 minutes of test audio by default), then, in one process, times generating every clip with the model
(load + generate_tokens + decode, what any evaluation must do) and the whole `evaluate_model` call
(generation + protocol audio reading + BC/L1div/FGD/face), `--repeats` times each, alternating.

    python benchmarks/eval_cost.py --samples ../shared/data/beat2 --work runs/eval25 --extractor AESK.bin
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def build_folder(samples: Path, work: Path, copies: int) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    sources = sorted(p.stem for p in samples.glob("*.npz") if (samples / f"{p.stem}.wav").is_file())
    ids = []
    for k in range(copies):
        src = sources[k % len(sources)]
        cid = f"2_scott_0_{1000 + k}_{1000 + k}"
        for suffix in (".npz", ".wav"):
            link = work / f"{cid}{suffix}"
            if not link.exists():
                link.symlink_to((samples / f"{src}{suffix}").resolve())
        ids.append(cid)
    mv = work / "mean_vel_smplxflame_30.npy"
    if not mv.exists() and (samples / mv.name).is_file():
        mv.symlink_to((samples / mv.name).resolve())
    return ids


def generate_only(model_path, data: Path, ids: list[str], seed: int = 0) -> tuple[float, float, float]:
    """Wall and CPU seconds to load + generate + decode every clip, and the seconds of audio."""
    from livegesture.bundle import ModelBundle
    from livegesture.data import find_clips, load_clip

    bundle = ModelBundle.load(model_path)
    t0, c0 = time.perf_counter(), time.process_time()
    seconds = 0.0
    with torch.no_grad():
        for f in find_clips(data, ids=ids):
            clip = load_clip(f)
            tokens = bundle.model.generate_tokens(torch.from_numpy(clip.audio)[None], seed=seed,
                                                  sampling=bundle.config.sampling)
            bundle.tokens_to_motion(tokens[0])
            seconds += len(clip.audio) / 16000
    return time.perf_counter() - t0, time.process_time() - c0, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=24)
    ap.add_argument("--model", default=None)
    ap.add_argument("--extractor", default=None)
    ap.add_argument("--protocol", default="beat2")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from livegesture.assets import demo_model_path
    from livegesture.evaluate import evaluate_model

    model = args.model or demo_model_path()
    ids = build_folder(args.samples, args.work, args.copies)
    for r in range(args.repeats):
        g, gc, audio_s = generate_only(model, args.work, ids)
        t0, c0 = time.perf_counter(), time.process_time()
        res = evaluate_model(model, args.work, ids=ids, extractor=args.extractor, protocol=args.protocol,
                             progress=False)
        e, ec = time.perf_counter() - t0, time.process_time() - c0
        print(f"run {r + 1}: {len(ids)} clips, {audio_s / 60:.1f} min of audio: generate {g:.1f} s wall / "
              f"{gc:.1f} s CPU, evaluate {e:.1f} s wall / {ec:.1f} s CPU (inside: generate "
              f"{res['seconds']['generate']:.1f}, load {res['seconds']['load']:.1f}, score "
              f"{res['seconds']['score']:.1f} s wall); evaluate - generate = {e - g:+.1f} s wall, "
              f"{ec - gc:+.1f} s CPU", flush=True)


if __name__ == "__main__":
    main()
