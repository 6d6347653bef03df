"""A tiny deterministic regression stage used by the trainer tests (also run under torchrun)."""

from __future__ import annotations

import json
import sys

import torch
from torch import nn
from torch.utils.data import Dataset

from livegesture.train import TrainConfig, Trainer


class ToySet(Dataset):
    def __init__(self, n: int = 48, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g, dtype=torch.float64)
        w = torch.randn(8, 2, generator=g, dtype=torch.float64)
        self.y = torch.tanh(self.x @ w)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def make_model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)).double()


def loss_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    err = model(batch["x"]) - batch["y"]
    return (err ** 2).mean(), {"mae": float(err.detach().abs().mean())}


class Crash(RuntimeError):
    pass


def run(out_dir: str, steps: int, batch_size: int = 12, checkpoint_every: int = 5,
        crash_at: int | None = None, loader_workers: int = 0) -> list:
    def on_step(model, batch, step):
        if step == crash_at:
            raise Crash(f"simulated kill at step {step}")

    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=1e-2, warmup_steps=2,
                      checkpoint_every=checkpoint_every, device="cpu", grad_clip=0.0,
                      loader_workers=loader_workers)
    tr = Trainer(make_model(), loss_fn, ToySet(), cfg, out_dir, name="toy", progress=False,
                 tensorboard=False, on_step=on_step)
    return tr.fit()["history"]


def _record_group_at_exit(path: str) -> None:
    """Registered before training: atexit runs handlers last-in first-out, so this runs after the
    trainer's own shutdown handler and records whether the process group was still alive."""
    import atexit

    import torch.distributed as dist

    atexit.register(lambda: open(path, "w").write("alive" if dist.is_initialized() else "destroyed"))


if __name__ == "__main__":  # torchrun entry: python -m tests.train.toy OUT STEPS RESULT.json
    import os

    _record_group_at_exit(f"{sys.argv[3]}.rank{os.environ.get('RANK', '0')}.exit")
    hist = run(sys.argv[1], int(sys.argv[2]))
    if int(os.environ.get("RANK", "0")) == 0:
        with open(sys.argv[3], "w") as f:
            json.dump(hist, f)
