"""Streaming layer step times: attention (streamed vs recompute) and CausalConv1d (nn.Conv1d vs matmul path).

    python benchmarks/bench_streaming.py [--what all|attention|conv|encoder] [--batch 1] [--threads 0] [--iters 2000]

Attention section.

Layer: StreamingSelfAttention(dim=256, heads=4, window=32), float32, eval, no grad.
"streamed": one call of ``step`` with 1 new token on a state that already holds a
full window. "recompute": ``forward`` on the last 32 tokens from a fresh state (what
a model without a KV cache does for every new token); only its last row is needed.

Conv section (``--what conv``). One ``CausalConv1d(dim, dim, 3, dilation=d)`` as in
the audio encoder's pyramid (float32, eval, inference mode), for dim in {128, 256},
batch in {1, 16}, chunk of 20 mel frames (one 200 ms packet) and of 1 frame, and
d in {1, 2, 4, 8}; the state is full. "conv" is the ``nn.Conv1d`` path (the
implementation before the matmul path existed), "matmul" the im2col + ``addmm``
path that ``impl="auto"`` uses on the CPU; both run on the same weights and input,
alternately, and their outputs are checked to agree. Printed: median microseconds
per ``step`` call (whole batch) and the ratio conv / matmul; the last line sums the
four dilations (one pyramid pass) per (dim, batch, chunk).

Encoder section (``--what encoder``). The whole ``AudioEncoder`` step on 200 ms
packets (as ``bench_audio_encoder.py``), with every ``CausalConv1d`` switched to
``impl="conv"`` or left on ``"auto"``, alternating blocks of 10 packets so that
both see the same machine load. Median milliseconds per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from livegesture.streaming import CausalConv1d, StreamingSelfAttention, state_clone  # noqa: E402


def timeit(fn, iters: int, repeats: int = 5) -> float:
    """Median over `repeats` of the mean seconds per call."""
    for _ in range(max(10, iters // 10)):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        runs.append((time.perf_counter() - t0) / iters)
    return statistics.median(runs)


def time_pair(fns, min_s: float = 0.02, repeats: int = 7) -> list[float]:
    """Median seconds per call of each function, timed alternately (same machine load for all)."""
    for fn in fns:  # warm-up and calibration: each timed block lasts about `min_s`
        for _ in range(5):
            fn()
    t0 = time.perf_counter()
    for _ in range(5):
        fns[0]()
    iters = max(3, int(min_s / max((time.perf_counter() - t0) / 5, 1e-7)))
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, r in zip(fns, runs):
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            r.append((time.perf_counter() - t0) / iters)
    return [statistics.median(r) for r in runs]


def bench_conv(device: torch.device, min_s: float) -> None:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"CausalConv1d(dim, dim, 3, dilation=d) step, float32, device={device} "
          f"threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"{'dim':>4} {'batch':>5} {'chunk':>5} {'d':>2} {'conv us':>9} {'matmul us':>10} {'conv/matmul':>11}")
    for dim in (128, 256):
        for batch in (1, 16):
            for chunk in (20, 1):
                tot = [0.0, 0.0]
                for d in (1, 2, 4, 8):
                    torch.manual_seed(0)
                    layers = [CausalConv1d(dim, dim, 3, dilation=d, impl=impl).to(device).eval()
                              for impl in ("conv", "matmul")]
                    layers[1].load_state_dict(layers[0].state_dict())
                    gen = torch.Generator().manual_seed(1)
                    warm = torch.randn(batch, 2 * d + 3, dim, generator=gen).to(device)
                    x = torch.randn(batch, chunk, dim, generator=gen).to(device)
                    with torch.inference_mode():
                        states = [m.init_state(batch, device=device) for m in layers]
                        for m, st in zip(layers, states):
                            m(warm, st)  # full state
                        probe = [m(x, state_clone(st)) for m, st in zip(layers, states)]
                        assert torch.allclose(probe[0], probe[1], atol=1e-4, rtol=1e-4)

                        def call(m, st):
                            def f():
                                m(x, st)
                                sync()
                            return f

                        t_conv, t_mm = time_pair([call(m, st) for m, st in zip(layers, states)], min_s)
                    tot[0] += t_conv
                    tot[1] += t_mm
                    print(f"{dim:>4} {batch:>5} {chunk:>5} {d:>2} {t_conv * 1e6:>9.1f} {t_mm * 1e6:>10.1f} "
                          f"{t_conv / t_mm:>10.2f}x", flush=True)
                print(f"{dim:>4} {batch:>5} {chunk:>5} {'all':>2} {tot[0] * 1e6:>9.1f} {tot[1] * 1e6:>10.1f} "
                      f"{tot[0] / tot[1]:>10.2f}x  (d = 1+2+4+8)", flush=True)


def bench_encoder(packets: int) -> None:
    from livegesture.audio import AudioEncoder, AudioEncoderConfig

    print(f"AudioEncoder step per 200 ms packet, float32, cpu, threads={torch.get_num_threads()}, "
          f"{packets} timed packets per implementation")
    print(f"{'dim':>4} {'batch':>5} {'conv ms':>8} {'auto ms':>8} {'conv/auto':>9}")
    for dim in (128, 256):
        for batch in (1, 16):
            torch.manual_seed(0)
            enc = AudioEncoder(AudioEncoderConfig(dim=dim)).eval()
            convs = [m for m in enc.modules() if isinstance(m, CausalConv1d)]
            audio = torch.randn(batch, 3200 * 16, generator=torch.Generator().manual_seed(1)) * 0.1
            times: dict[str, list[float]] = {"conv": [], "auto": []}
            with torch.inference_mode():
                states = {k: enc.init_state(batch) for k in times}
                for k, st in states.items():  # warm-up: full states
                    for m in convs:
                        m.impl = k
                    for i in range(20):
                        enc.step(audio[:, (i % 16) * 3200:(i % 16 + 1) * 3200], st)
                i = 0
                while len(times["auto"]) < packets:
                    for k, st in states.items():
                        for m in convs:
                            m.impl = k
                        for j in range(10):
                            x = audio[:, ((i + j) % 16) * 3200:((i + j) % 16 + 1) * 3200]
                            t0 = time.perf_counter()
                            enc.step(x, st)
                            times[k].append(time.perf_counter() - t0)
                    i += 10
            a, b = statistics.median(times["conv"]) * 1e3, statistics.median(times["auto"]) * 1e3
            print(f"{dim:>4} {batch:>5} {a:>8.2f} {b:>8.2f} {a / b:>8.2f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=["all", "attention", "conv", "encoder"], default="all")
    ap.add_argument("--batch", type=int, default=1, help="attention section's batch")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--iters", type=int, default=2000, help="attention section's calls per timed block")
    ap.add_argument("--conv-block-s", type=float, default=0.02,
                    help="conv section: seconds per timed block (7 blocks per implementation, medians)")
    ap.add_argument("--encoder-packets", type=int, default=200, help="encoder section: timed packets per impl")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what in ("all", "attention"):
        bench_attention(args)
    if args.what in ("all", "conv"):
        bench_conv(torch.device(args.device), args.conv_block_s)
    if args.what in ("all", "encoder"):
        bench_encoder(args.encoder_packets)


def bench_attention(args) -> None:
    torch.manual_seed(0)
    dim, heads, window = 256, 4, 32
    dev = torch.device(args.device)
    att = StreamingSelfAttention(dim, heads, window).to(dev).eval()
    B = args.batch
    history = torch.randn(B, 4 * window, dim, device=dev)
    tok = torch.randn(B, 1, dim, device=dev)
    win = history[:, -window:]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    with torch.inference_mode():
        state = att.init_state(B, device=dev)
        att(history, state)  # the ring holds a full window
        # correctness of the comparison: the streamed token equals recomputing its window
        ref = att(torch.cat([history[:, -(window - 1):], tok], 1))[:, -1:]
        probe = {k: v.clone() for k, v in state.items()}
        assert torch.allclose(att(tok, probe), ref, atol=1e-5)

        def streamed():
            att(tok, state)
            sync()

        def recompute():
            att(win)[:, -1:]
            sync()

        t_stream = timeit(streamed, args.iters)
        t_full = timeit(recompute, args.iters)
    print(f"StreamingSelfAttention dim={dim} heads={heads} window={window} batch={B} "
          f"device={dev} threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"streamed 1-token step        : {t_stream * 1e6:9.1f} us/step")
    print(f"recompute {window}-token window   : {t_full * 1e6:9.1f} us/step")
    print(f"ratio recompute / streamed   : {t_full / t_stream:9.2f} x")


if __name__ == "__main__":
    main()
