"""Plausibility figures of generated motion beside real motion (not a BEAT2 metric).

Prints, for motion generated from each speech file (and for real BEAT2 motion when given):
wrist speed p50 / p99 (m/s, approximate skeleton, root fixed), the mean wrist speed across
token boundaries (frame 4k+3 -> 4k+4) over the mean inside tokens (1.0 for real motion: jumps
where one token hands over to the next make it larger), and the correlation between the
wrist speed and the speech loudness, both smoothed over 0.5 s (does the motion follow the speech?).

    python benchmarks/motion_stats.py --model M.safetensors --audio a.wav b.wav --real clip.npz --seeds 2
"""

from __future__ import annotations

import argparse

import numpy as np


def wrist_speed(motion) -> np.ndarray:
    from livegesture.body.kinematics import forward_kinematics

    j = forward_kinematics(motion, zero_trans=True)
    return np.linalg.norm(np.diff(j[:, [20, 21]], axis=0), axis=-1).mean(-1) * motion.fps


def stats(speed: np.ndarray, audio: np.ndarray | None) -> str:
    boundary = np.arange(len(speed)) % 4 == 3
    out = (f"wrist speed p50 {np.median(speed):.2f} p99 {np.percentile(speed, 99):.2f} m/s, "
           f"boundary/inside {speed[boundary].mean() / speed[~boundary].mean():.2f}")
    if audio is not None:
        hop = 1600 / 3
        n = min(len(speed), int(len(audio) // hop) - 1)
        rms = np.array([np.sqrt(np.mean(audio[int(i * hop):int((i + 1) * hop)] ** 2)) for i in range(1, n + 1)])
        k = np.ones(15) / 15
        out += f", corr(speed, loudness) {np.corrcoef(np.convolve(speed[:n], k, 'same'), np.convolve(rms, k, 'same'))[0, 1]:+.3f}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: the bundled demo model)")
    ap.add_argument("--audio", nargs="+", required=True)
    ap.add_argument("--real", nargs="*", default=[], help="real BEAT2 npz (with its wav beside it)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--smooth", type=float, default=0.0)
    ap.add_argument("--cleanup", action="store_true", help="with the model's clean-up (default: the raw output)")
    args = ap.parse_args()
    from pathlib import Path

    import torch

    from livegesture import LiveGesture, Motion
    from livegesture.data import load_audio, training_features
    from livegesture.cleanup import CleanupConfig
    from livegesture.smoothing import SmoothingConfig

    lg = LiveGesture.load(args.model)
    for path in args.real:
        m = Motion.load(path)
        wav = Path(path).with_suffix(".wav")
        a = load_audio(wav) if wav.exists() else None
        print(f"real {Path(path).name}: {stats(wrist_speed(m), a)}")
        # the same clip through the model's tokenizer (encode, then the causal decoder): what the
        # tokenizer alone adds, e.g. jumps at token boundaries
        m = m[:len(m) // 4 * 4]
        feats = training_features(m)
        b = lg.bundle
        with torch.no_grad():
            toks = torch.stack([b.tokenizer[r].encode(torch.from_numpy(b.stats.normalize(r, feats[r]))[None])[0]
                                for r in b.tokenizer.regions])
        rec = b.tokens_to_motion(toks)
        print(f"tokenized {Path(path).name}: {stats(wrist_speed(rec), a[:int(len(rec) / 30 * 16000)] if a is not None else None)}")
    for path in args.audio:
        a = load_audio(path)
        for seed in range(args.seeds):
            m = lg.generate(a, seed=seed, smoothing=SmoothingConfig(args.smooth),
                            cleanup=None if args.cleanup else CleanupConfig.off())
            print(f"generated {Path(path).name} seed {seed}: {stats(wrist_speed(m), a)}")


if __name__ == "__main__":
    main()
