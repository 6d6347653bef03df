"""The published BEAT2 FGD feature extractor: EMAGE's skeleton-convolution autoencoder.

The FGD of the BEAT2 tables (EMAGE 2024, and MambaTalk and GestureLSM, which reuse its
test loop) is the Fréchet distance of the latents of one pretrained network, the
``VAESKConv`` autoencoder distributed as ``AESKConv_240_100.bin``. This module is an
independent implementation of that network (written from its published description and
state-dict layout, not copied), so that a user's copy of the file loads and gives the
published features:

- input: (B, T, 330) 6D poses, 55 joints in BEAT2 order, pytorch3d's 6D convention
  (first two rows of the rotation matrix); T a multiple of 32 (the test loop crops each
  clip to ``T - T % 32`` frames); no input normalisation;
- the skeleton is a list of *edges*: edge 0 is a virtual edge (pelvis, 55) above the root
  and edge j = (parent(j), j) for joint j >= 1, so the 6 channels of joint j belong to edge j;
- 4 encoder levels, each ``tanh(pool(GroupNorm10(conv_k4_s2(x)) + conv_k1_s2(x)))``, where
  both convolutions are *skeleton* convolutions (the outputs of an edge see only the input
  channels of the edges within 2 hops of it; zero padding 1 for the k=4 one) and ``pool``
  averages consecutive edge pairs along each chain of the tree (see :func:`pool_groups`);
  channels per edge 6, 6, 6, 12, 12 and edges 55 -> 35 -> 20 -> 20 -> 20, so the latent
  is 20 x 12 = 240 channels at T/16 time steps;
- decoder (not used for FGD, present in the file): two residual 3-conv blocks at 240
  channels, four (nearest 2x upsampling, conv3, LeakyReLU 0.2) and a final conv3 to 330;
- ``fc_mu`` / ``fc_logvar`` (240 x 240) exist in the file but the published model is not
  variational (``variational: False``): they are loaded and never used.

The published checkpoint is a torch pickle ``{"model_state": {...}}`` whose keys may
carry a ``module.`` prefix (saved from a data-parallel model); it also stores each skeleton
convolution's connectivity mask and each pooling matrix, which :func:`load_published_extractor`
checks against the ones computed here from the SMPL-X tree.
"""

from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..body.constants import NUM_JOINTS, PARENTS
from ..errors import CheckpointError

POSE_DIM = NUM_JOINTS * 6
LATENT = 240
#: frames the published test loop crops each clip to a multiple of
WINDOW = 32
#: time steps of the latent per input frame
DOWNSAMPLE = 16
CHANNELS_PER_EDGE = (6, 6, 6, 12, 12)
NEIGHBOUR_DIST = 2
KERNEL = 4
NORM_GROUPS = 10
#: how tables name this extractor
LABEL = "published BEAT2 FGD extractor (EMAGE 2024 VAESKConv)"

Edge = tuple[int, int]


def skeleton_edges() -> list[Edge]:
    """Edge 0 = (0, 55), a virtual edge above the pelvis; edge j = (parent(j), j)."""
    return [(0, NUM_JOINTS)] + [(PARENTS[j], j) for j in range(1, NUM_JOINTS)]


def edge_neighbours(edges: Sequence[Edge], dist: int = NEIGHBOUR_DIST) -> list[list[int]]:
    """For each edge, the (sorted) edges at most `dist` hops away; two edges are one hop apart
    when they share a joint."""
    n = len(edges)
    adj = [[k for k in range(n) if k != i and set(edges[i]) & set(edges[k])] for i in range(n)]
    out = []
    for i in range(n):
        depth = {i: 0}
        queue = deque([i])
        while queue:
            e = queue.popleft()
            if depth[e] == dist:
                continue
            for k in adj[e]:
                if k not in depth:
                    depth[k] = depth[e] + 1
                    queue.append(k)
        out.append(sorted(depth))
    return out


def _chains(edges: Sequence[Edge]) -> list[list[int]]:
    """Edge chains of the tree, walked depth first from joint 0 in edge order: a chain ends at a
    leaf or at a branching joint (more than two edges meet there; the root does not end chains)."""
    degree: dict[int, int] = {}
    for a, b in edges:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    children: dict[int, list[int]] = {}
    for idx, (a, _) in enumerate(edges):
        children.setdefault(a, []).append(idx)
    chains: list[list[int]] = []

    def walk(joint: int, chain: list[int]) -> None:
        if joint != 0 and degree[joint] > 2:
            chains.append(chain)
            chain = []
        if degree[joint] == 1:
            chains.append(chain)
            return
        for idx in children.get(joint, []):
            walk(edges[idx][1], chain + [idx])

    walk(0, [])
    return chains


def pool_groups(edges: Sequence[Edge], last: bool = False) -> tuple[list[list[int]], list[Edge]]:
    """Edges averaged into each pooled edge, and the pooled skeleton's edges.

    Every chain of an odd length keeps its first edge alone; the rest of the chain is pooled
    in consecutive pairs (a pair spans from its first edge's parent joint to its second
    edge's child joint). At the last level each whole chain is one group (no new skeleton).
    """
    groups: list[list[int]] = []
    new_edges: list[Edge] = []
    for chain in _chains(edges):
        if last:
            groups.append(chain)
            continue
        if len(chain) % 2:
            groups.append([chain[0]])
            new_edges.append(edges[chain[0]])
            chain = chain[1:]
        for i in range(0, len(chain), 2):
            groups.append([chain[i], chain[i + 1]])
            new_edges.append((edges[chain[i]][0], edges[chain[i + 1]][1]))
    return groups, new_edges


def connectivity_mask(neighbours: Sequence[Sequence[int]], c_in: int, c_out: int,
                      kernel: int) -> torch.Tensor:
    """(E*c_out, E*c_in, kernel) 0/1: the outputs of edge i see the inputs of its neighbours."""
    e = len(neighbours)
    mask = torch.zeros(e * c_out, e * c_in, kernel)
    for i, nb in enumerate(neighbours):
        cols = torch.tensor([k * c_in + c for k in nb for c in range(c_in)])
        mask[i * c_out:(i + 1) * c_out, cols] = 1.0
    return mask


def pool_matrix(groups: Sequence[Sequence[int]], num_edges: int, channels: int) -> torch.Tensor:
    """(G*channels, E*channels): output group g, channel c = mean of its edges' channel c."""
    w = torch.zeros(len(groups) * channels, num_edges * channels)
    for g, members in enumerate(groups):
        for e in members:
            for c in range(channels):
                w[g * channels + c, e * channels + c] = 1.0 / len(members)
    return w


class SkeletonConv(nn.Module):
    """A temporal convolution whose weights are masked by the skeleton's connectivity (zero
    padding on both sides, then a strided conv)."""

    def __init__(self, mask: torch.Tensor, stride: int, padding: int) -> None:
        super().__init__()
        out_ch, in_ch, kernel = mask.shape
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel))
        self.bias = nn.Parameter(torch.empty(out_ch))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / math.sqrt(in_ch * kernel), 1 / math.sqrt(in_ch * kernel))
        self.register_buffer("mask", mask, persistent=False)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.padding, self.padding))
        return F.conv1d(x, self.weight * self.mask, self.bias, self.stride)


class SkeletonLevel(nn.Module):
    """One encoder level: tanh(pool(GroupNorm(conv_k4_s2(x)) + conv_k1_s2(x)))."""

    def __init__(self, edges: Sequence[Edge], c_in: int, c_out: int, last: bool) -> None:
        super().__init__()
        nb = edge_neighbours(edges)
        self.conv = SkeletonConv(connectivity_mask(nb, c_in, c_out, KERNEL), stride=2,
                                 padding=(KERNEL - 1) // 2)
        self.norm = nn.GroupNorm(NORM_GROUPS, len(edges) * c_out)
        self.skip = SkeletonConv(connectivity_mask(nb, c_in, c_out, 1), stride=2, padding=0)
        groups, self.pooled_edges = pool_groups(edges, last)
        pooled = len(groups) != len(edges)
        self.register_buffer("pool", pool_matrix(groups, len(edges), c_out) if pooled else None,
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x)) + self.skip(x)
        if self.pool is not None:
            y = torch.matmul(self.pool, y)
        return torch.tanh(y)


class ResBlock1d(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv1d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class PublishedFgdExtractor(nn.Module):
    """The EMAGE skeleton-conv autoencoder whose latent is the published FGD feature."""

    window = WINDOW
    latent = LATENT
    label = LABEL

    def __init__(self) -> None:
        super().__init__()
        edges = skeleton_edges()
        levels = []
        for i in range(len(CHANNELS_PER_EDGE) - 1):
            last = i == len(CHANNELS_PER_EDGE) - 2
            level = SkeletonLevel(edges, CHANNELS_PER_EDGE[i], CHANNELS_PER_EDGE[i + 1], last)
            levels.append(level)
            edges = level.pooled_edges
        self.encoder = nn.ModuleList(levels)
        self.res = nn.ModuleList(ResBlock1d(LATENT) for _ in range(2))
        self.up = nn.ModuleList(nn.Conv1d(LATENT, c, 3, padding=1) for c in (LATENT,) * 3 + (POSE_DIM,))
        self.out = nn.Conv1d(POSE_DIM, POSE_DIM, 3, padding=1)
        # the published model's (unused) variational heads: kept so that its file loads whole
        self.fc_mu = nn.Linear(LATENT, LATENT)
        self.fc_logvar = nn.Linear(LATENT, LATENT)

    def encode(self, poses6d: torch.Tensor) -> torch.Tensor:
        """(B, T, 330) -> (B, T/16, 240); T must be a multiple of 16."""
        if poses6d.ndim != 3 or poses6d.shape[-1] != POSE_DIM:
            raise ValueError(f"expected (B, T, {POSE_DIM}) 6D poses, got {tuple(poses6d.shape)}")
        if poses6d.shape[1] % DOWNSAMPLE:
            raise ValueError(f"T={poses6d.shape[1]} frames is not a multiple of {DOWNSAMPLE}")
        x = poses6d.transpose(1, 2)
        for level in self.encoder:
            x = level(x)
        return x.transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T/16, 240) -> (B, T, 330)."""
        x = z.transpose(1, 2)
        for block in self.res:
            x = block(x)
        for conv in self.up:
            x = F.leaky_relu(conv(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)
        return self.out(x).transpose(1, 2)

    def forward(self, poses6d: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(poses6d))

    @torch.no_grad()
    def features(self, poses6d: torch.Tensor | np.ndarray) -> np.ndarray:
        """FGD features (N, 240) float32 of 6D poses (B, T, 330), cropped to ``T - T % 32`` frames as
        in the published test loop: one feature per 16 frames."""
        x = torch.as_tensor(np.asarray(poses6d) if not isinstance(poses6d, torch.Tensor) else poses6d,
                            dtype=torch.float32)
        t = x.shape[1] - x.shape[1] % WINDOW
        if t == 0:
            raise ValueError(f"the published FGD extractor needs at least {WINDOW} frames, got {x.shape[1]}")
        dev = self.fc_mu.weight.device
        z = self.eval().encode(x[:, :t].to(dev))
        return z.reshape(-1, LATENT).cpu().numpy()


# ---------------------------------------------------------------- the published file's layout
def _published_names(model: PublishedFgdExtractor) -> dict[str, str]:
    """The published file's key -> our state-dict key, or None for the structural tensors
    (connectivity masks, pooling matrices), in the file's order."""
    names: dict[str, str | None] = {}
    for i, level in enumerate(model.encoder):
        pre = f"encoder.layers.{i}.0."
        for theirs, ours in (("residual.0", "conv"), ("residual.1", "norm"), ("shortcut", "skip")):
            if ours != "norm":
                names[f"{pre}{theirs}.mask"] = None
            for p in ("weight", "bias"):
                names[f"{pre}{theirs}.{p}"] = f"encoder.{i}.{ours}.{p}"
        if level.pool is not None:
            names[f"{pre}common.0.weight"] = None
    for b in range(2):
        for theirs, ours in ((0, "conv1"), (2, "conv2")):
            for p in ("weight", "bias"):
                names[f"decoder.main.{b}.model.{theirs}.{p}"] = f"res.{b}.{ours}.{p}"
    for u in range(4):
        for p in ("weight", "bias"):
            names[f"decoder.main.{3 + 3 * u}.{p}"] = f"up.{u}.{p}"
    for p in ("weight", "bias"):
        names[f"decoder.main.14.{p}"] = f"out.{p}"
    for head in ("fc_mu", "fc_logvar"):
        for p in ("weight", "bias"):
            names[f"{head}.{p}"] = f"{head}.{p}"
    return names  # type: ignore[return-value]


def _structure(model: PublishedFgdExtractor) -> dict[str, torch.Tensor]:
    """The published file's non-trained tensors as computed here from the SMPL-X tree."""
    out: dict[str, torch.Tensor] = {}
    for i, level in enumerate(model.encoder):
        pre = f"encoder.layers.{i}.0."
        out[pre + "residual.0.mask"] = level.conv.mask
        out[pre + "shortcut.mask"] = level.skip.mask
        if level.pool is not None:
            out[pre + "common.0.weight"] = level.pool
    return out


def published_state(model: PublishedFgdExtractor | None = None) -> dict[str, torch.Tensor]:
    """The model's tensors under the published file's key names, in the file's order (what a
    ``{"model_state": ...}`` file of this layout holds)."""
    model = model or PublishedFgdExtractor()
    own, structure = model.state_dict(), _structure(model)
    return {k: (structure[k] if ours is None else own[ours]).detach().clone()
            for k, ours in _published_names(model).items()}


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_published_extractor(path: str | os.PathLike,
                             device: str | torch.device = "cpu") -> PublishedFgdExtractor:
    """Load a ``{"model_state": {...}}`` torch file of the published layout (``module.``
    prefixes allowed) with ``torch.load(weights_only=True)``. A file of another layout is refused
    with one line naming the first wrong key and shape."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such FGD extractor file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: not a torch checkpoint readable without running code "
                              f"({exc.__class__.__name__}: {first})") from None
    state = obj.get("model_state") if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a {{'model_state': {{...}}}} checkpoint (the layout of "
                              "the published AESKConv_240_100.bin)")
    state = _strip_prefix(state)
    model = PublishedFgdExtractor()
    layout = {k: tuple(v.shape) for k, v in published_state(model).items()}
    for key, shape in layout.items():
        v = state.get(key)
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: not the published FGD extractor: key {key} {shape} is missing")
        if tuple(v.shape) != shape:
            raise CheckpointError(f"{path}: not the published FGD extractor: {key} has shape "
                                  f"{tuple(v.shape)}, expected {shape}")
    extra = [k for k in state if k not in layout]
    if extra:
        v = state[extra[0]]
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise CheckpointError(f"{path}: not the published FGD extractor: unexpected key {extra[0]} {shape}")
    for key, expected in _structure(model).items():
        if not torch.equal(state[key].float(), expected):
            raise CheckpointError(f"{path}: {key} differs from the SMPL-X skeleton's "
                                  "(not the published 55-joint FGD extractor)")
    ours = {o: k for k, o in _published_names(model).items() if o is not None}
    model.load_state_dict({k: state[ours[k]].float() for k in model.state_dict()})
    return model.to(device).eval()
