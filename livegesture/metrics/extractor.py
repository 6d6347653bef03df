"""FGD feature extractor: a skeleton-aware 1D-conv motion autoencoder over all 55 joints in 6D.

Layout (in the spirit of the BEAT2/EMAGE evaluation autoencoder, written from scratch):

- input: 330-d frames (55 joints × 6D), normalised with a mean/std stored in the model;
- encoder: skeleton convolutions over time, where each joint's output channels see only
  the joints within ``neighbour_dist`` edges of it on the SMPL-X tree (a gather of
  neighbour channels followed by a grouped conv, one group per joint), two of them with
  stride 2 (4× downsampling, one latent per token of 4 frames), then plain convs mixing
  all joints down to ``latent`` channels;
- decoder: plain convs with two 2× upsamplings back to 330-d frames.

The feature of FGD is the latent: one ``latent``-d vector per 4 frames.
Weights are saved as safetensors with the JSON config in the file's metadata.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..body.constants import NUM_JOINTS, PARENTS
from ..errors import CheckpointError

POSE_DIM = NUM_JOINTS * 6
KIND = "fgd-extractor"


@dataclass(frozen=True)
class FgdConfig:
    joint_channels: int = 16     # channels per joint in the skeleton convolutions
    hidden: int = 256            # channels of the plain convolutions
    latent: int = 128            # feature size (one vector per 4 frames)
    neighbour_dist: int = 2      # graph distance of a joint's receptive neighbourhood
    kernel: int = 3
    vel_weight: float = 1.0      # weight of the velocity L1 term of the loss

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FgdConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(f"FGD extractor config: unknown field(s) {', '.join(unknown)}")
        return cls(**d)


def joint_neighbourhoods(dist: int) -> list[list[int]]:
    """For each joint, itself and the joints within `dist` edges on the kinematic tree."""
    adj: list[set[int]] = [set() for _ in range(NUM_JOINTS)]
    for j, p in enumerate(PARENTS):
        if p >= 0:
            adj[j].add(p)
            adj[p].add(j)
    out = []
    for j in range(NUM_JOINTS):
        seen, frontier = {j}, {j}
        for _ in range(dist):
            frontier = {k for f in frontier for k in adj[f]} - seen
            seen |= frontier
        out.append([j] + sorted(seen - {j}))
    return out


class SkeletonConv1d(nn.Module):
    """Temporal conv where joint j's outputs see only the channels of its neighbourhood.

    Input/output (B, 55·C, T) with channels grouped by joint. Neighbourhoods are padded
    to the largest one with a zero pseudo-joint, then one grouped Conv1d does all joints.
    """

    def __init__(self, in_per_joint: int, out_per_joint: int, kernel: int, stride: int = 1,
                 neighbour_dist: int = 2) -> None:
        super().__init__()
        nb = joint_neighbourhoods(neighbour_dist)
        width = max(len(n) for n in nb)
        index = torch.full((NUM_JOINTS, width), NUM_JOINTS, dtype=torch.long)
        for j, n in enumerate(nb):
            index[j, :len(n)] = torch.tensor(n)
        self.register_buffer("index", index.reshape(-1), persistent=False)
        self.in_per_joint, self.width = in_per_joint, width
        pad = (kernel - stride + 1) // 2 if stride > 1 else kernel // 2
        self.conv = nn.Conv1d(NUM_JOINTS * width * in_per_joint, NUM_JOINTS * out_per_joint,
                              kernel, stride=stride, padding=pad, groups=NUM_JOINTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        x = x.reshape(b, NUM_JOINTS, self.in_per_joint, t)
        x = torch.cat([x, x.new_zeros(b, 1, self.in_per_joint, t)], dim=1)
        x = x.index_select(1, self.index).reshape(b, -1, t)
        return self.conv(x)


class FgdExtractor(nn.Module):
    """Motion autoencoder whose per-token latent is the FGD feature (see the module doc)."""

    label = "LiveGesture's own FGD extractor (not comparable with published FGD)"

    def __init__(self, config: FgdConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or FgdConfig()
        k, jc, h = c.kernel, c.joint_channels, c.hidden
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.register_buffer("mean", torch.zeros(POSE_DIM))
        self.register_buffer("std", torch.ones(POSE_DIM))
        self.encoder = nn.Sequential(
            SkeletonConv1d(6, jc, k, 1, c.neighbour_dist), act(),
            SkeletonConv1d(jc, jc, 4, 2, c.neighbour_dist), act(),
            SkeletonConv1d(jc, jc, 4, 2, c.neighbour_dist), act(),
            nn.Conv1d(NUM_JOINTS * jc, h, k, padding=k // 2), act(),
            nn.Conv1d(h, c.latent, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv1d(c.latent, h, k, padding=k // 2), act(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv1d(h, h, k, padding=k // 2), act(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv1d(h, h, k, padding=k // 2), act(),
            nn.Conv1d(h, POSE_DIM, k, padding=k // 2),
        )

    # ------------------------------------------------------------- model
    def set_normalisation(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor,
                          min_std: float = 1e-2) -> None:
        """Store per-dimension input statistics (std floored at `min_std`: constant dims exist)."""
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(POSE_DIM)
        std_t = torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(POSE_DIM)
        self.mean.copy_(mean_t)
        self.std.copy_(std_t.clamp_min(min_std))

    def _check(self, poses6d: torch.Tensor) -> torch.Tensor:
        if poses6d.ndim != 3 or poses6d.shape[-1] != POSE_DIM:
            raise ValueError(f"FgdExtractor expects (B, T, {POSE_DIM}) 6D poses, "
                             f"got {tuple(poses6d.shape)}")
        t = poses6d.shape[1] - poses6d.shape[1] % 4
        if t == 0:
            raise ValueError("FgdExtractor needs at least 4 frames")
        return poses6d[:, :t]

    def encode(self, poses6d: torch.Tensor) -> torch.Tensor:
        """(B, T, 330) -> latents (B, T//4, latent); T is cropped to a multiple of 4."""
        x = self._check(poses6d).to(self.mean.dtype)
        x = ((x - self.mean) / self.std).transpose(1, 2)
        return self.encoder(x).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, T/4, latent) -> normalised poses (B, T, 330)."""
        return self.decoder(z.transpose(1, 2)).transpose(1, 2)

    def forward(self, poses6d: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(poses6d))

    @torch.no_grad()
    def features(self, poses6d: torch.Tensor | np.ndarray) -> np.ndarray:
        """FGD features (N, latent) of 6D poses (B, T, 330): one row per 4 frames."""
        x = torch.as_tensor(np.asarray(poses6d) if not isinstance(poses6d, torch.Tensor)
                            else poses6d, dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            z = self.encode(x.to(self.mean.device))
        finally:
            self.train(was_training)
        return z.reshape(-1, z.shape[-1]).cpu().numpy().astype(np.float64)

    def loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 reconstruction + `vel_weight` × L1 of frame-to-frame velocity (normalised poses)."""
        x = self._check(batch).to(self.mean.dtype)
        target = (x - self.mean) / self.std
        rec = self.decode(self.encode(x))
        l_rec = F.l1_loss(rec, target)
        l_vel = F.l1_loss(rec[:, 1:] - rec[:, :-1], target[:, 1:] - target[:, :-1])
        loss = l_rec + self.config.vel_weight * l_vel
        return loss, {"loss": float(loss.detach()), "rec": float(l_rec.detach()),
                      "vel": float(l_vel.detach())}

    # -------------------------------------------------------------- files
    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write weights + normalisation as a LiveGesture model file (safetensors, config JSON in
        its metadata), atomically."""
        from ..modelio import save_model_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        return save_model_file(path, tensors, KIND, {"config": asdict(self.config), "info": extra or {}})

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "FgdExtractor":
        """Read a file written by :meth:`save` (use :func:`load_external` for other checkpoints)."""
        from ..modelio import load_model_file

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such FGD extractor file")
        state, meta = load_model_file(path, kind=KIND)
        try:
            config = FgdConfig.from_dict(meta["config"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: bad config in metadata ({exc})") from None
        model = cls(config)
        _load_matching(model, state, path, require_norm=True)
        return model.to(device).eval()


def _unwrap_state(obj: Any) -> dict[str, torch.Tensor]:
    """A state dict from common checkpoint wrappers ({"state_dict": ...}, "module." prefixes)."""
    for key in ("state_dict", "model_state", "model_state_dict", "model", "net"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("no state dict of tensors in it")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_matching(model: FgdExtractor, state: dict[str, torch.Tensor], path: Path,
                   require_norm: bool) -> list[str]:
    """Load `state` into `model` if keys and shapes match; CheckpointError naming mismatches."""
    own = model.state_dict()
    norm = {"mean", "std"}
    missing = [k for k in own if k not in state and (require_norm or k not in norm)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch: " + ", ".join(wrong[:5]) + (" ..." if len(wrong) > 5
                                                                       else ""))
        if missing:
            parts.append("missing: " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5
                                                                 else ""))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:5]) +
                         (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(f"{path}: checkpoint does not match the FGD extractor "
                              f"architecture ({model.config}); " + "; ".join(parts))
    model.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
    return [k for k in norm if k not in state]


def load_external(path: str | os.PathLike, config: FgdConfig | None = None,
                  mean: np.ndarray | None = None, std: np.ndarray | None = None,
                  device: str | torch.device = "cpu") -> FgdExtractor:
    """Load a user-supplied checkpoint into an :class:`FgdExtractor` of `config` (default
    config when None): .safetensors, or .pt/.bin via ``torch.load(weights_only=True)``.

    Its keys and shapes must match the architecture; otherwise :class:`CheckpointError`
    lists the first mismatched keys. Checkpoints without ``mean``/``std`` need them
    passed here (the 330-d pose statistics they were trained with).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = _unwrap_state(torch.load(path, map_location="cpu", weights_only=True))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    model = FgdExtractor(config)
    absent = _load_matching(model, state, path, require_norm=False)
    if absent:
        if mean is None or std is None:
            raise CheckpointError(f"{path}: checkpoint has no input normalisation "
                                  f"({', '.join(sorted(absent))}); pass mean= and std= (330,)")
        model.set_normalisation(mean, std)
    elif mean is not None and std is not None:
        model.set_normalisation(mean, std)
    return model.to(device).eval()


def load_extractor(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """An FGD extractor file: the project's own (``.safetensors`` written by ``livegesture train
    fgd-extractor``) or the published EMAGE one (``AESKConv_240_100.bin``, a torch pickle), see
    :mod:`livegesture.metrics.published_extractor`. Both have ``features(poses6d)`` and ``label``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return FgdExtractor.load(path, device)
    from .published_extractor import load_published_extractor

    return load_published_extractor(path, device)


def motion_to_6d(poses: np.ndarray) -> np.ndarray:
    """Axis-angle poses (T, 55, 3) or (T, 165) -> 6D poses (T, 330) float32."""
    from ..body.rotations import axis_angle_to_6d

    p = np.asarray(poses, dtype=np.float64).reshape(len(poses), NUM_JOINTS, 3)
    return axis_angle_to_6d(torch.from_numpy(p)).reshape(len(p), POSE_DIM).numpy().astype(
        np.float32)


def motion_features(extractor: FgdExtractor, motions: Sequence[Any]) -> np.ndarray:
    """FGD features of whole clips (Motion objects or axis-angle pose arrays), concatenated."""
    feats = []
    for m in motions:
        poses = getattr(m, "poses", m)
        if len(poses) < 4:
            continue
        feats.append(extractor.features(motion_to_6d(poses)[None]))
    if not feats:
        raise ValueError("motion_features: no clip of at least 4 frames")
    return np.concatenate(feats)


def fgd(extractor: FgdExtractor, generated: Sequence[Any], real: Sequence[Any]) -> float:
    """FGD: Fréchet distance of the extractor's features of generated vs real clips
    (tables print it × 10)."""
    from .frechet import frechet_distance

    return frechet_distance(motion_features(extractor, generated),
                            motion_features(extractor, real))
