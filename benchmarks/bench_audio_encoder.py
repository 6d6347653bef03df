"""Compute time of the streaming AudioEncoder per 200 ms packet of audio.

    python benchmarks/bench_audio_encoder.py [--threads 1] [--iters 200] [--packet-ms 200]

For each (dim, batch) in {128, 256} x {1, 16}: a randomly initialised encoder
(float32, eval, inference mode) is fed 200 ms packets (3200 samples, 6 motion
frames) of noise-like audio for every session of the batch; after a warm-up of
50 packets (the state is full), each ``step`` is timed. Printed: median and 90th
percentile milliseconds per call (the whole batch), the per-session share, and the
real-time factor (packet duration / median time). The comparison the paper makes
is "< 50 ms compute per 200 ms chunk" for the whole model; the encoder is one part.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from livegesture.audio import AudioEncoder, AudioEncoderConfig  # noqa: E402


def bench(dim: int, batch: int, packet: int, iters: int, warmup: int = 50) -> tuple[float, float]:
    torch.manual_seed(0)
    enc = AudioEncoder(AudioEncoderConfig(dim=dim)).eval()
    state = enc.init_state(batch)
    gen = torch.Generator().manual_seed(1)
    audio = torch.randn(batch, packet * 16, generator=gen) * 0.1
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            x = audio[:, (i % 16) * packet:(i % 16 + 1) * packet]
            t0 = time.perf_counter()
            enc.step(x, state)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.9 * (len(times) - 1))] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--packet-ms", type=int, default=200)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    packet = args.packet_ms * 16
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, packet {args.packet_ms} ms "
          f"({packet} samples), {args.iters} timed steps")
    print(f"{'dim':>4} {'batch':>5} {'params':>8} {'median ms':>10} {'p90 ms':>8} {'ms/session':>10} "
          f"{'x realtime':>10}")
    for dim in (128, 256):
        n_params = sum(p.numel() for p in AudioEncoder(AudioEncoderConfig(dim=dim)).parameters())
        for batch in (1, 16):
            med, p90 = bench(dim, batch, packet, args.iters)
            print(f"{dim:>4} {batch:>5} {n_params:>8} {med:>10.2f} {p90:>8.2f} {med / batch:>10.3f} "
                  f"{args.packet_ms / med:>10.1f}")


if __name__ == "__main__":
    main()
