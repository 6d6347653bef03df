"""Physical plausibility of real and generated motion, raw and through the clean-up (issue 14).

Prints per clip (livegesture.metrics.motion_quality; approximate skeleton): foot slide while in
contact (median / mean, m/s), share of frames with a foot in contact (any foot joint / per joint),
root excursion from the start (largest / at the end, m), token-boundary ratio of the wrist speed,
share of frames with a knee or elbow bent backwards, share of frames with a foot joint below the
floor and the deepest point, and, for processed rows, how many frames the wrist trajectory trails
the row it was made from.

Rows: each real BEAT2 clip (``--real``) as it is and through the clean-up, the same clip through
the model's tokenizer (encode, causal decode), raw and cleaned; then motion generated from each
``--audio`` file (one stream per file and seed): the raw model output, the clean-up (the model
file's default, ``config.cleanup``), and the optional 80 ms causal low-pass for comparison.

    python benchmarks/heldout_speech.py --data $D --out runs/heldout_6min.wav
    python benchmarks/motion_quality.py --real $D/2_scott_0_1_1.npz $D/2_scott_0_2_2.npz --audio runs/heldout_6min.wav
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HEADER = (f"{'motion':44s} {'slide med':>9s} {'mean':>6s} {'contact':>7s} {'joint':>6s} {'root max':>8s} "
          f"{'end':>5s} {'bound.':>6s} {'limits':>6s} {'floor':>6s} {'depth':>5s} {'shift':>5s}")


def row(name: str, q: dict, shift: float | None = None) -> str:
    s = "-" if shift is None else f"{shift:+.1f}"
    return (f"{name:44s} {q['slide_median']:9.4f} {q['slide_mean']:6.3f} {q['contact_any']:7.1%} "
            f"{q['contact_joint']:6.1%} {q['root_max']:8.2f} {q['root_end']:5.2f} {q['boundary_ratio']:6.2f} "
            f"{q['limit_violations']:6.1%} {q['floor_share']:6.1%} {100 * q['floor_depth']:4.1f}c {s:>5s}")


def tokenized(lg, motion):
    """`motion` through the model's tokenizers: encode (bidirectional), decode (causal)."""
    return lg.bundle.tokens_to_motion(lg.bundle.motion_to_tokens(motion[:len(motion) // 4 * 4]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled demo model)")
    ap.add_argument("--real", nargs="*", default=[], help="real BEAT2 npz clips")
    ap.add_argument("--audio", nargs="*", default=[], help="speech files to generate from (one stream each)")
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()

    import numpy as np

    from livegesture import LiveGesture, Motion
    from livegesture.cleanup import Cleanup, CleanupConfig
    from livegesture.data import load_audio
    from livegesture.metrics.motion_quality import motion_quality, trajectory_shift
    from livegesture.smoothing import CausalSmoother, SmoothingConfig

    lg = LiveGesture.load(args.model)
    cfg = lg.bundle.config.cleanup  # the clean-up the model file's sessions use
    print(f"clean-up: {cfg}")
    print("approximate neutral skeleton; contact = foot joint within 2 cm of its lowest height in the clip "
          "and < 1 cm vertical step")
    print(HEADER)
    for path in args.real:
        name = Path(path).stem
        m = Motion.load(path)
        print(row(f"real {name}", motion_quality(m)))
        c = Cleanup(cfg)(m)
        print(row(f"real {name} + clean-up", motion_quality(c), trajectory_shift(m, c)))
        t = tokenized(lg, m)
        print(row(f"real {name} through the tokenizer", motion_quality(t)))
        ct = Cleanup(cfg)(t)
        print(row(f"real {name} through the tokenizer + clean-up", motion_quality(ct), trajectory_shift(t, ct)))
    for path in args.audio:
        a = load_audio(path)
        for seed in range(args.seeds):
            name = f"{Path(path).stem[:28]} seed {seed}"
            t0 = time.perf_counter()
            raw = lg.generate(a, seed=seed, cleanup=CleanupConfig.off())
            t1 = time.perf_counter()
            c = lg.generate(a, seed=seed)  # the default: the model file's clean-up in the session
            t2 = time.perf_counter()
            offline = Cleanup(cfg)(raw)  # the same stage run on the raw clip afterwards: bit-identical
            assert np.array_equal(offline.poses, c.poses) and np.array_equal(offline.trans, c.trans)
            print(row(f"generated {name} raw", motion_quality(raw)))
            print(row(f"generated {name} + clean-up", motion_quality(c), trajectory_shift(raw, c)))
            s = CausalSmoother(SmoothingConfig(0.08), raw.fps)(raw)
            print(row(f"generated {name} + low-pass 80 ms", motion_quality(s), trajectory_shift(raw, s)))
            print(f"  ({raw.duration:.0f} s of motion: raw in {t1 - t0:.0f} s, with the clean-up in {t2 - t1:.0f} s)")


if __name__ == "__main__":
    main()
