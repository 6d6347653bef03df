"""One training loop for every stage: seeded, resumable, DDP-aware, logged.

A stage supplies a model, a ``loss_fn(model, batch) -> (loss, logs)`` and a
dataset; the loop owns devices, mixed precision, distributed data parallelism,
the learning-rate schedule, progress bar, TensorBoard logs and atomic
checkpoints. Data order depends only on the seed and the *global* batch size, so
one process and N DDP processes see the same samples per step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from .checkpoint import atomic_torch_save, load_training_checkpoint
from .distributed import DistInfo, all_reduce_mean, barrier, init_distributed, resolve_device

LossFn = Callable[[nn.Module, dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32           # global batch, split across DDP ranks
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1      # cosine decay to lr * min_lr_ratio
    grad_clip: float = 1.0
    log_every: int = 10
    eval_every: int = 0            # 0: evaluate only at the end (if a val set is given)
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"        # fp32 | bf16 (autocast on CUDA/CPU) | fp16 (CUDA, grad scaling)
    keep_best: bool = False        # end with the weights of the lowest validation loss (needs eval_every)
    patience: int = 0              # with keep_best: stop after this many evaluations without a new best
    loader_workers: int = 0        # DataLoader worker processes reading windows (0: in this process)


class _Endless:
    """A batch sampler over an endless index generator (DataLoader wants an iterable)."""

    def __init__(self, make: Callable[[], Iterator[list[int]]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[list[int]]:
        return self.make()


class Trainer:
    def __init__(self, model: nn.Module, loss_fn: LossFn, train_set: Dataset, cfg: TrainConfig,
                 out_dir: str | Path, name: str = "train", val_set: Dataset | None = None,
                 params: Sequence[nn.Parameter] | None = None,
                 collate: Callable[[list[Any]], Any] = default_collate,
                 on_step: Callable[[nn.Module, dict[str, Any], int], None] | None = None,
                 progress: bool = True, tensorboard: bool = True) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.name = name
        self.ckpt_path = self.out_dir / f"{name}.ckpt"
        self.device = resolve_device(cfg.device)
        self.dist: DistInfo = init_distributed(self.device)
        if self.dist.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        if cfg.batch_size % self.dist.world_size:
            from ..errors import ConfigError

            raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the "
                              f"{self.dist.world_size} DDP processes")
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.train_set, self.val_set = train_set, val_set
        self.collate = collate
        self.on_step = on_step
        self.progress, self.tensorboard = progress, tensorboard
        trainable = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
        self.params = trainable
        self.opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay) if trainable else None
        self.step = 0
        self.history: list[tuple[int, float]] = []
        self.best: dict[str, float] | None = None  # validation logs of the best step so far
        self.best_state: dict[str, torch.Tensor] | None = None
        self.ddp_model: nn.Module = self.model
        if self.dist.world_size > 1 and trainable:
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=False)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16" and self.device.type == "cuda")

    # ------------------------------------------------------------------ data
    def _batch_indices(self) -> Iterator[list[int]]:
        """Endless window indices of this rank's batches, a pure function of (seed, global step).

        Global step s takes items k*b .. k*b+b-1 (mod n) of epoch s // (n // b)'s
        seeded permutation; rank r keeps every world-th of them. Resuming at any
        step therefore continues with exactly the batches an unbroken run would see.
        """
        n = len(self.train_set)  # type: ignore[arg-type]
        if n == 0:
            from ..errors import DataError

            raise DataError("the training set is empty (no windows: clips shorter than one window?)")
        b, w, r = self.cfg.batch_size, self.dist.world_size, self.dist.rank
        per_epoch = max(1, n // b)
        step, cached_epoch, perm = self.step, -1, None
        while True:
            epoch, k = divmod(step, per_epoch)
            if epoch != cached_epoch:
                g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
                perm, cached_epoch = torch.randperm(n, generator=g), epoch
            glob = perm[(torch.arange(b) + k * b) % n]
            yield [int(i) for i in glob[r::w]]
            step += 1

    def _batches(self) -> Iterator[Any]:
        """Endless collated batches of :meth:`_batch_indices`, read here or by DataLoader workers
        (``loader_workers``; they share the memory-mapped data with this process)."""
        if self.cfg.loader_workers <= 0:
            for idx in self._batch_indices():
                yield self.collate([self.train_set[i] for i in idx])
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(self.train_set, batch_sampler=_Endless(self._batch_indices),
                            collate_fn=self.collate, num_workers=self.cfg.loader_workers,
                            prefetch_factor=4, pin_memory=self.device.type == "cuda")
        yield from loader

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    # ------------------------------------------------------------ schedule
    def lr_at(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        t = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    # --------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict() if self.opt else {},
                "step": self.step, "history": [list(h) for h in self.history],
                "torch_rng": torch.get_rng_state(), "name": self.name,
                "best": self.best or {}, "best_state": self.best_state or {}}

    def save(self) -> None:
        if self.dist.is_main:
            atomic_torch_save(self.state_dict(), self.ckpt_path)
        barrier(self.dist)

    def maybe_resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        ck = load_training_checkpoint(self.ckpt_path)
        self.model.load_state_dict(ck["model"])
        if self.opt and ck.get("opt"):
            self.opt.load_state_dict(ck["opt"])
        self.step = int(ck["step"])
        self.history = [(int(s), float(v)) for s, v in ck.get("history", [])]
        torch.set_rng_state(ck["torch_rng"])
        self.best = dict(ck.get("best") or {}) or None
        self.best_state = dict(ck.get("best_state") or {}) or None
        return True

    def _track_best(self, val: dict[str, float]) -> None:
        """Remember the weights of the lowest validation loss so far (``keep_best``)."""
        if not self.cfg.keep_best or "loss" not in val:
            return
        if self.best is None or val["loss"] < self.best["loss"]:
            self.best = {"step": float(self.step), **val}
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def out_of_patience(self) -> bool:
        """True once ``patience`` evaluations in a row brought no new best (a function of the saved
        state, so a resumed run stops at the same step)."""
        c = self.cfg
        if not (c.keep_best and c.patience > 0 and c.eval_every > 0 and self.best is not None):
            return False
        return self.step - int(self.best["step"]) >= c.patience * c.eval_every

    # ---------------------------------------------------------------- loop
    def _autocast(self):
        if self.cfg.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.cfg.precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return torch.autocast(self.device.type, enabled=False)

    @torch.no_grad()
    def evaluate(self, dataset: Dataset | None = None) -> dict[str, float]:
        """Mean of the loss and logs over a dataset (the validation set by default)."""
        dataset = dataset if dataset is not None else self.val_set
        if dataset is None or len(dataset) == 0:  # type: ignore[arg-type]
            return {}
        self.model.eval()
        totals: dict[str, float] = {}
        count = 0
        idx = list(range(self.dist.rank, len(dataset), self.dist.world_size))  # type: ignore[arg-type]
        bs = max(1, self.cfg.batch_size // self.dist.world_size)
        for i in range(0, len(idx), bs):
            items = [dataset[j] for j in idx[i:i + bs]]
            batch = self._to_device(self.collate(items))
            with self._autocast():
                loss, logs = self.loss_fn(self.model, batch)
            for k, v in {"loss": float(loss), **logs}.items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(items)
            count += len(items)
        self.model.train()
        t = torch.tensor([totals.get(k, 0.0) for k in sorted(totals)] + [count], dtype=torch.float64)
        if self.dist.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        return {k: float(t[i] / t[-1]) for i, k in enumerate(sorted(totals))}

    def fit(self, resume: bool = True) -> dict[str, Any]:
        """Train to ``cfg.steps`` (resuming from this stage's checkpoint if one exists)."""
        torch.manual_seed(self.cfg.seed + self.dist.rank)
        resumed = resume and self.maybe_resume()
        writer = None
        if self.tensorboard and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out_dir / "runs" / self.name))
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.cfg.steps, initial=self.step, desc=self.name, dynamic_ncols=True)
        batches = self._batches()
        self.model.train()
        t0 = time.perf_counter()
        while self.step < self.cfg.steps and self.opt is not None and not self.out_of_patience():
            batch = self._to_device(next(batches))
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            with self._autocast():
                loss, logs = self.loss_fn(self.ddp_model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.name}: loss became {float(loss)} at step {self.step}")
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.cfg.grad_clip > 0:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            if self.on_step is not None:
                self.on_step(self.model, batch, self.step)
            self.step += 1
            mean_loss = float(all_reduce_mean(loss.detach().double(), self.dist))
            self.history.append((self.step, mean_loss))
            if self.dist.is_main:
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                if writer is not None and self.step % self.cfg.log_every == 0:
                    writer.add_scalar(f"{self.name}/loss", mean_loss, self.step)
                    writer.add_scalar(f"{self.name}/lr", self.lr_at(self.step - 1), self.step)
                    for k, v in logs.items():
                        writer.add_scalar(f"{self.name}/{k}", float(v), self.step)
            if self.cfg.eval_every and self.step % self.cfg.eval_every == 0 and self.val_set is not None:
                val = self.evaluate()
                self._track_best(val)
                if writer is not None:
                    for k, v in val.items():
                        writer.add_scalar(f"{self.name}/val_{k}", v, self.step)
            if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                self.save()
        if bar is not None:
            bar.close()
        val = self.evaluate() if self.val_set is not None else {}
        self._track_best(val)
        if self.cfg.keep_best and self.best_state is not None and self.best is not None:
            self.model.load_state_dict(self.best_state)
            val = {k: v for k, v in self.best.items() if k != "step"}
        self.save()
        if writer is not None:
            for k, v in val.items():
                writer.add_scalar(f"{self.name}/val_{k}", v, self.step)
            writer.close()
        return {"steps": self.step, "resumed": resumed, "history": self.history, "val": val,
                "best_step": int(self.best["step"]) if self.cfg.keep_best and self.best else None,
                "seconds": time.perf_counter() - t0}
