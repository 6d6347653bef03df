"""Export speed: stick-figure rendering (frames/s), mp4 encoding with audio, BVH writing.

    python benchmarks/bench_export.py [clip.npz] [--frames 600] [--size 640]

Defaults to ../shared/data/beat2/2_scott_0_1_1.npz (+ .wav). Rendering runs on
one thread in this process; ffmpeg (libx264) runs in its own process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


from livegesture.export import render_frames, render_video, write_bvh
from livegesture.motion import Motion

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beat2" / "2_scott_0_1_1.npz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", nargs="?", default=str(DEFAULT))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", type=int, default=640)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    full = Motion.load(args.clip)
    m = full[: args.frames]
    size = (args.size, args.size)

    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(1 for _ in render_frames(m, size=size))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"render_frames {n} frames {size[0]}x{size[1]}: {n / wall:.1f} frames/s wall, "
          f"{n / cpu:.1f} frames/s per CPU second ({1000 * cpu / n:.2f} ms CPU/frame); "
          f"real time = {m.fps:g} frames/s")

    audio = None
    wav = Path(args.clip).with_suffix(".wav")
    if wav.is_file():
        import soundfile as sf

        audio, sr = sf.read(wav, dtype="float32")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = render_video(m, Path(tmp) / "bench.mp4", audio=audio,
                           sample_rate=sr if audio is not None else 16000, size=size)
        wall = time.perf_counter() - t0
        print(f"render_video {len(m)} frames (+audio: {audio is not None}): {wall:.2f} s, "
              f"{len(m) / wall:.1f} frames/s, {out.stat().st_size / 1e6:.2f} MB "
              f"({m.duration:.1f} s of video)")
        t0 = time.perf_counter()
        p = write_bvh(full, Path(tmp) / "bench.bvh")
        wall = time.perf_counter() - t0
        print(f"write_bvh {len(full)} frames: {wall:.2f} s, {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
