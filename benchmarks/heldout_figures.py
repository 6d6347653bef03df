"""Held-out figures of a trained model file on a data folder (issue 4's checks).

Prints: held-out token NLL of the experts alone, of the fuse, and of the fuse with the
audio condition dropped; BC and L1div of motion generated from held-out audio, through
exactly the code of ``livegesture evaluate`` (the model file's sampling config, one
``livegesture evaluate --ids ID --seed S`` per seed: the same figures), beside BC of a real clip
of the same length that belongs to *other* audio (a random real clip).

    python benchmarks/heldout_figures.py --model MODEL --data DIR --heldout ID --other ID
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from livegesture.body import forward_kinematics
from livegesture.bundle import ModelBundle
from livegesture.data import find_clips, load_clip
from livegesture.evaluate import evaluate_model
from livegesture.law import repeat_last_token_nll
from livegesture.metrics import beat_consistency, l1_diversity
from livegesture.metrics.evaluate import find_mean_vel, load_mean_vel
from livegesture.train.ar_stage import heldout_token_nll, make_datasets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--heldout", required=True, help="clip id not used in training")
    ap.add_argument("--other", required=True, help="another real clip (the 'random real clip')")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    b = ModelBundle.load(a.model)
    held = load_clip(find_clips(a.data, ids=[a.heldout])[0])
    other = load_clip(find_clips(a.data, ids=[a.other], require=("motion",))[0])
    _, val = make_datasets(b.stats, b.vocab, [held], [held], b.config)
    nll = heldout_token_nll(b, val)
    print(f"held-out token NLL (nats/token) on {a.heldout}, {len(val)} windows: "
          f"experts {nll['experts']:.3f}, fuse {nll['fuse']:.3f}, fuse without audio {nll['fuse_no_audio']:.3f}")
    base = repeat_last_token_nll(b, [held.motion], [other.motion])
    print(f"baseline 'repeat the last token or draw from the training unigram' (fitted on {a.other}): "
          + ", ".join(f"{r} {v:.3f}" for r, v in base.items()) + f"; mean {np.mean(list(base.values())):.3f} "
          f"(uniform ln K = {np.log(b.model.codebook_size):.3f})")
    mvp = find_mean_vel(a.data)
    mv = load_mean_vel(mvp) if mvp else None
    audio = held.audio
    # like for like with the random clip and the ground truth below: the strict protocol (the metric
    # functions as they are); the published BEAT2 protocol's rows are printed after them
    runs = [evaluate_model(a.model, a.data, ids=[a.heldout], seed=seed, protocol="strict", progress=False)
            for seed in range(a.seeds)]
    bcs = [r["rows"]["generated"]["bc"] for r in runs]
    divs = [r["rows"]["generated"]["l1div"] for r in runs]
    n = runs[0]["frames"]
    rng = np.random.default_rng(0)
    rand_bc = []
    for _ in range(5):
        start = int(rng.integers(0, max(1, len(other.motion) - n)))
        real = other.motion[start:start + n]
        rand_bc.append(beat_consistency(forward_kinematics(real, zero_trans=True), audio[:int(len(real) / 30 * 16000)],
                                        16000, mean_vel=mv))
    gt = forward_kinematics(held.motion[:n], zero_trans=True)
    print(f"generated from {a.heldout} audio ({n} frames, seeds 0..{a.seeds - 1}, sampling {runs[0]['sampling']}): "
          f"BC {np.mean(bcs):.4f} (per seed {', '.join(f'{x:.4f}' for x in bcs)}), "
          f"L1div {np.mean(divs):.3f} (per seed {', '.join(f'{x:.3f}' for x in divs)}); per seed the same as "
          f"`livegesture evaluate --model {a.model} --data {a.data} --ids {a.heldout} --seed S --protocol strict`")
    print(f"random real clip ({a.other}, 5 random {n}-frame crops) with that audio: BC {np.mean(rand_bc):.4f} "
          f"(min {np.min(rand_bc):.4f}, max {np.max(rand_bc):.4f})")
    print(f"ground truth of {a.heldout}: BC {beat_consistency(gt, audio, 16000, mean_vel=mv):.4f}, "
          f"L1div {l1_diversity([gt]):.3f}")
    print("strict protocol (the metric functions); joints: approximate neutral skeleton; BC mean speeds:",
          mvp or "from the clips")
    pub = [evaluate_model(a.model, a.data, ids=[a.heldout], seed=seed, protocol="beat2", progress=False)
           for seed in range(a.seeds)]
    g = [r["rows"]["generated"] for r in pub]
    gt_row = pub[0]["rows"]["ground_truth"]
    per_seed = ", ".join(f"{x['bc']:.4f}" for x in g)
    print(f"published BEAT2 protocol (`livegesture evaluate --ids {a.heldout} --seed S`, its default): generated "
          f"BC {np.mean([x['bc'] for x in g]):.4f} (per seed {per_seed}), "
          f"L1div {np.mean([x['l1div'] for x in g]):.3f}; ground truth BC {gt_row['bc']:.4f}, "
          f"L1div {gt_row['l1div']:.3f}")


if __name__ == "__main__":
    main()
