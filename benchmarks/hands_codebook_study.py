"""How many tokens does the hands region need? A study behind issue 3's hands figure (not a test).

Trains a hands tokenizer on one clip and prints its held-out rotation error against the training
mean pose, for the project's joint layout (both hands, 180-d, one token) or a per-hand layout:
one encoder/decoder shared by the left hand and the mirrored right hand (90-d each; the mirror of
a 6D rotation is a sign flip, so the shared network sees twice the data) with one code per hand,
so that a hands token would be the pair (left code, right code): K = k^2, or (k2^2)^2 with a
residual pair codebook of k2 + k2 codes per hand.

    python benchmarks/hands_codebook_study.py --data ../shared/data/beat2 --layout per-hand --k 256
    python benchmarks/hands_codebook_study.py --data ../shared/data/beat2 --layout joint --k 23 --pair residual

The short training loop here (AdamW, warm-up + cosine, random 64-frame windows) stands in for
`livegesture train tokenizer`, which the per-hand layout does not fit.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from livegesture.body.rotations import geodesic_angle, six_d_to_matrix
from livegesture.data import find_clips, load_clip, training_features
from livegesture.tokenizer import TokenizerConfig
from livegesture.tokenizer.decoder import CausalMotionDecoder
from livegesture.tokenizer.encoder import MotionEncoder
from livegesture.tokenizer.quantizer import EMAQuantizer
from livegesture.tokenizer.svq import RegionTokenizer, reconstruction_loss

WINDOW = 64


def rot_err_deg(pred: np.ndarray, gt: np.ndarray) -> float:
    p = six_d_to_matrix(torch.tensor(pred.reshape(len(pred), -1, 6), dtype=torch.float64))
    g = six_d_to_matrix(torch.tensor(gt.reshape(len(gt), -1, 6), dtype=torch.float64))
    return float(torch.rad2deg(geodesic_angle(p, g)).mean())


def lr_at(step: int, total: int, warm: int, lr: float) -> float:
    if step < warm:
        return lr * (step + 1) / warm
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--train", default="2_scott_0_1_1")
    ap.add_argument("--heldout", default="2_scott_0_2_2")
    ap.add_argument("--layout", choices=("joint", "per-hand"), default="per-hand")
    ap.add_argument("--k", type=int, default=23, help="codes per hand (per-hand) or per token (joint)")
    ap.add_argument("--pair", choices=("", "residual"), default="", help="k + k residual pair codebook")
    ap.add_argument("--stage1-steps", type=int, default=1500)
    ap.add_argument("--stage2-steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    clips = {f.id: load_clip(f).motion for f in find_clips(a.data, ids=[a.train, a.heldout], require=("motion",))}
    tr, te = clips[a.train], clips[a.heldout]
    te = te[: len(te) // 4 * 4]

    def hands(m):
        return training_features(m)["hands"].astype(np.float32)

    if a.layout == "per-hand":  # left hands, and right hands seen in a mirror (a mirrored clip's left hand)
        train_streams = [hands(tr)[:, :90], hands(tr.mirrored())[:, :90]]
        test_streams = [hands(te)[:, :90], hands(te.mirrored())[:, :90]]
    else:
        train_streams, test_streams = [hands(tr)], [hands(te)]
    dim = train_streams[0].shape[1]
    cat = np.concatenate(train_streams)
    mu, sd = cat.mean(0), np.maximum(cat.std(0), 1e-3)
    k = a.k * a.k if a.pair else a.k
    cfg = TokenizerConfig(hidden=96, latent_dim=48, code_dim=48, codebook_size=k, dead_code_threshold=0.02,
                          pair_regions=("hands",) if a.pair else (), pair_kind="residual")
    tok = RegionTokenizer("hands", cfg)
    tok.encoder, tok.decoder = MotionEncoder(dim, cfg), CausalMotionDecoder(dim, cfg)
    xs = [torch.from_numpy((s - mu) / sd) for s in train_streams]

    def batch(n: int = 32) -> torch.Tensor:
        out = []
        for _ in range(n):
            s = xs[int(torch.randint(len(xs), (1,), generator=g))]
            i = int(torch.randint(len(s) - WINDOW, (1,), generator=g))
            out.append(s[i:i + WINDOW])
        return torch.stack(out)

    t0 = time.perf_counter()
    for stage, steps, lr, warm in ((1, a.stage1_steps, 2e-3, 50), (2, a.stage2_steps, 1e-3, 20)):
        tok.set_stage(stage)
        if stage == 2:
            tok.eval()
            with torch.no_grad():
                tok.init_stage2(torch.cat([torch.stack([s[i:i + WINDOW] for i in range(0, len(s) - WINDOW, 4)])
                                           for s in xs]))
            tok.train()
        opt = torch.optim.AdamW([p for p in tok.parameters() if p.requires_grad], lr=lr)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, warm, lr)
            loss = (reconstruction_loss(tok.autoencode(x := batch()), x, 0.5)[0] if stage == 1
                    else tok.stage2_loss(batch())[0])
            opt.zero_grad()
            loss.backward()
            if stage == 1:
                torch.nn.utils.clip_grad_norm_(tok.parameters(), 1.0)
            opt.step()
    tok.eval()
    s1, s2, ids = [], [], []
    with torch.no_grad():
        for s in test_streams:
            x = torch.from_numpy((s - mu) / sd)[None]
            s1.append(tok.autoencode(x)[0].numpy() * sd + mu)
            i = tok.encode(x)
            ids.append(i.reshape(-1))
            s2.append(tok.decode(i)[0].numpy() * sd + mu)
    gt = np.concatenate(test_streams)
    h_tr, h_te = hands(tr), hands(te)
    base = rot_err_deg(np.broadcast_to(h_tr.mean(0), h_te.shape), h_te)  # as `report tokenizer` does
    e1, e2 = rot_err_deg(np.concatenate(s1), gt), rot_err_deg(np.concatenate(s2), gt)
    perp, used = EMAQuantizer.usage_stats(torch.cat(ids), k)
    tokens_per_hands_token = k * k if a.layout == "per-hand" else k
    print(json.dumps({"layout": a.layout, "codes": k, "hands_vocabulary": tokens_per_hands_token,
                      "mean_pose_deg": round(base, 3), "stage1_deg": round(e1, 3), "stage2_deg": round(e2, 3),
                      "stage1_vs_mean_pose": round(1 - e1 / base, 4), "stage2_vs_mean_pose": round(1 - e2 / base, 4),
                      "perplexity": round(perp, 1), "codes_used": round(used, 3),
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
