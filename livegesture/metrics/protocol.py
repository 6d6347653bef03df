"""Evaluation protocols: which exact definition of each BEAT2 metric a table follows.

A number stands beside a published table only when it was computed the way that table's
code computes it, down to the details that move digits. Three named protocols:

``beat2`` (default)
    The test loop of the EMAGE 2024 code base (PantoMatrix/PantoMatrix, scripts/EMAGE_2024:
    ``utils/metric.py`` and the trainer's ``test()``), which MambaTalk and GestureLSM reuse
    for their tables. Test clips are cut to whole seconds of the shorter of motion and
    audio (its test data loader). BC: the clip's audio read again with librosa at its
    default rate (22050 Hz) and resampled to 16 kHz, cut to the motion's duration, onsets
    (hop 512) on it without its first 2 s and without the last 2 s *of the whole file*;
    joint speed / ``mean_vel_smplxflame_30.npy``; beats are local minima (order 7) in
    frames [60, n - 60] whose speed, read at the minimum's index *relative to frame 60*,
    is above 0.3; Gaussian score (sigma 0.3 s) averaged over the 13 upper-body joints;
    clips weighted by (n - 120). L1div over the 55 joints (translation 0). FGD on the
    latents of the published extractor (6D poses cut to a multiple of 32 frames), the
    pytorch-fid Fréchet distance (eps only when the matrix root is singular). Face: MSE of
    jaw+expression vertices and the loop's "LVD", ``L1(rec[1:] - tar[:-1], tar[1:] -
    tar[:-1])``, which is the mean absolute vertex error of frames 1..n-1; both weighted by n.
``evaltools``
    The newer ``emage_evaltools/mertic.py`` package (PantoMatrix 2025 code base) with its
    ``evaluation_fn``: the audio read with librosa at 16 kHz, onsets on samples
    [32000, (t - 60) / 30 * 16000); speed threshold 0.1; joints with the root orientation
    set to 0; t = the shorter of the two motions; the Fréchet distance always adds eps to
    both covariances; face MSE and LVD (velocity difference) summed and divided by
    t x vertex coordinates.
``strict``
    This project's corrected definition (docs/design.md §8): the speed of a beat is read at
    the minimum itself, the audio is the project's loader (soxr) cut to the motion's
    duration, then [2 s, end - 2 s], true face velocity difference; not comparable with
    published tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

BEAT2, EVALTOOLS, STRICT = "beat2", "evaltools", "strict"


@dataclass(frozen=True)
class Protocol:
    """The choices that distinguish one metric definition from another (see the module doc)."""

    name: str
    source: str
    audio: str                   # "librosa-22050-to-16k" | "librosa-16k" | "project"
    onset_crop: str              # BEAT2 | EVALTOOLS | STRICT
    bc_threshold: float
    published_indexing: bool     # beat speed read at the index relative to the crop
    zero_root_orient: bool       # joints computed with global orientation 0
    whole_seconds: bool          # clips cut to whole seconds of the shorter stream
    frechet: str                 # "pytorch-fid" | "eps-always" | STRICT
    face: str                    # BEAT2 | EVALTOOLS | STRICT
    add_hand_mean: bool          # exact SMPL-X joints with the model's mean hand pose added

    @property
    def comparable(self) -> bool:
        """Figures of this protocol stand beside published tables (given the published extractor,
        mean speeds and SMPL-X model)."""
        return self.name != STRICT


PROTOCOLS: dict[str, Protocol] = {
    BEAT2: Protocol(
        name=BEAT2,
        source="EMAGE 2024 test loop (PantoMatrix/PantoMatrix@04f7e5d scripts/EMAGE_2024 utils/metric.py "
               "and the trainer's test(); reused by MambaTalk, GestureLSM)",
        audio="librosa-22050-to-16k", onset_crop=BEAT2, bc_threshold=0.3, published_indexing=True,
        zero_root_orient=False, whole_seconds=True, frechet="pytorch-fid", face=BEAT2,
        add_hand_mean=True),
    EVALTOOLS: Protocol(
        name=EVALTOOLS,
        source="emage_evaltools/mertic.py and evaluation_fn (PantoMatrix/PantoMatrix@0bbb03d)",
        audio="librosa-16k", onset_crop=EVALTOOLS, bc_threshold=0.1, published_indexing=True,
        zero_root_orient=True, whole_seconds=False, frechet="eps-always", face=EVALTOOLS,
        add_hand_mean=True),
    STRICT: Protocol(
        name=STRICT,
        source="LiveGesture's corrected definition (docs/design.md §8); not comparable with published tables",
        audio="project", onset_crop=STRICT, bc_threshold=0.3, published_indexing=False,
        zero_root_orient=False, whole_seconds=False, frechet=STRICT, face=STRICT,
        add_hand_mean=False),
}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called `name`; :class:`ConfigError` naming the valid ones otherwise."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; use one of {', '.join(PROTOCOLS)}") from None


def scored_frames(protocol: Protocol, n_motion: int, n_audio: int, sample_rate: int = 16000,
                  fps: int = 30) -> int:
    """Frames a protocol scores of a clip with `n_motion` frames and `n_audio` samples (already cut
    to the shorter duration by the data loader): whole seconds for ``beat2``."""
    if protocol.whole_seconds:
        return fps * min(n_motion // fps, n_audio // sample_rate)
    return n_motion
