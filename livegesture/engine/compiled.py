"""The lone stream's model step as one compiled program (docs/design.md §6 "Compiled step").

A KV-cached base step runs ~2,800 aten calls; on a CPU their fixed cost alone is above the
step's memory floor. ``torch.compile`` (inductor, its C++ wrapper, weights frozen as
constants) turns :meth:`LiveGestureModel.step_flat` into one generated C++ program. Its float32
products call the streaming kernel (:mod:`livegesture.model.stream_kernel`: tile-packed weights
read once, in order, where the library's GEMMs read cold weights at a third of the bandwidth),
built with the same compiler on first use; if it does not build, the library's products stay,
with a warning. It is an opt-in mode of a :class:`~.api.LiveGesture`, like int8:

* it is used by the one-row cores (:class:`~.session.StreamSession`, ``generate``, priming,
  ``bench``'s step and stream); batched cores (``SessionBatch``, the server's pool) stay eager,
  because every batch size is another compile and the batched eager step is already row-padded
  and cheaper per session;
* it is not bit-equal to the eager float32 step (fused element-wise loops and the kernel's sums
  round differently, logits within a few 1e-6); the packed copies cost as many bytes again as the
  float32 products (the eager step, which batched cores use, reads the library's layout);
  streaming == offline holds bit for bit *within* the mode, since both run the same program on
  the same shapes (``tests/engine/test_compiled.py``);
* the first compile takes about a minute on a CPU (inductor keeps it in its on-disk cache, so a
  second process takes seconds); :class:`CompiledStep` compiles at construction, on a scratch
  state, so that a live stream never stalls on it.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import LiveGestureError
from ..model import stream_kernel
from ..model.config import FRAMES_PER_TOKEN
from ..streaming.state import StreamState

__all__ = ["CompiledStep", "compile_available"]

#: inductor options: the C++ wrapper (no Python between the generated kernels) and frozen weights
#: (constants of the program: the engine never changes them, see ``freeze_inference_weights``)
INDUCTOR_OPTIONS = {"cpp_wrapper": True, "freezing": True}


def compile_available(device: torch.device | str = "cpu") -> str | None:
    """None when this machine can compile the step, else the reason (one line)."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if torch.device(device).type == "cpu" and stream_kernel.cxx_compiler() is None:
        return "compiling the step needs a C++ compiler (g++ or clang++, or $CXX) on the PATH"
    return None


class CompiledStep:
    """``model.step(state, feats, prev, scale)`` of one token for states of `batch` sessions,
    through a compiled :meth:`~livegesture.model.LiveGestureModel.step_flat`.

    Compiled once for the model's shapes at batch `batch` with guidance `guided` (graphs are
    specialised to shapes: another batch size is another compile, refused here)."""

    def __init__(self, model: torch.nn.Module, batch: int = 1, guided: bool = True,
                 guidance_scale: float = 1.0, kernel: bool = True):
        why = compile_available(model.null_audio.device)
        if why is not None:
            raise LiveGestureError(why)
        self.model, self.batch, self.guided = model, int(batch), bool(guided)
        self.guidance_scale = float(guidance_scale)
        if not kernel:
            note: str | None = "not asked for"
        elif model.null_audio.device.type == "cpu":
            note = stream_kernel.load()
        else:
            note = "the streaming product kernel is a CPU kernel"
        if kernel and note is not None:
            warnings.warn(f"{note}; the compiled step keeps the library's products", stacklevel=2)
        #: whether the program's float32 products run on the streaming kernel, and if not, why not
        self.kernel, self.kernel_note = note is None, note
        model.use_stream_kernel(self.kernel)
        model.freeze_inference_weights()
        # the kernel switch is the model's (dynamo guards on it: one model, one kind of program)
        self._fn = torch.compile(model.step_flat, dynamic=False, fullgraph=True, options=INDUCTOR_OPTIONS)
        self._warm()

    def _warm(self) -> None:
        """Compile now, on a scratch state of the same shapes (two steps: the program must be reused)."""
        m = self.model
        state = m.init_state(self.batch, guidance=self.guided)
        feats = torch.zeros(self.batch, FRAMES_PER_TOKEN, m.config.audio.dim,
                            dtype=m.null_audio.dtype, device=m.null_audio.device)
        prev = torch.full((self.batch, m.num_regions, 1), m.bos_id, dtype=torch.long, device=feats.device)
        with torch.no_grad():  # one eager step first: the lazily built weight copies, packed copies
            # and tables exist before the trace (made inside it, they would be remade every call)
            m.step(state, feats, prev, self.guidance_scale)
        try:
            for _ in range(2):
                self(state, feats, prev, self.guidance_scale)
        except LiveGestureError:
            raise
        except Exception as e:  # an inductor / compiler failure: one line, not its traceback
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LiveGestureError(f"torch.compile of the model step failed: {first[:300]}") from e

    @torch.no_grad()
    def __call__(self, state: StreamState, feats: torch.Tensor, prev: torch.Tensor,
                 guidance_scale: float) -> torch.Tensor:
        """Fused logits (B, R, 1, K) of one token, the state advanced in place (as ``model.step``)."""
        streams: torch.Tensor = state["streams"]  # type: ignore[assignment]
        if prev.shape[0] != self.batch or prev.shape[2] != 1 or streams.shape[1] != (2 if self.guided else 1):
            raise LiveGestureError(f"the compiled step takes one token of {self.batch} session(s) "
                                   f"({'with' if self.guided else 'without'} guidance), got prev "
                                   f"{tuple(prev.shape)} and {streams.shape[1]} stream(s)")
        if float(guidance_scale) != self.guidance_scale:
            raise LiveGestureError(f"the step was compiled for guidance scale {self.guidance_scale}, "
                                   f"got {guidance_scale}")
        experts, fuse = self.model.flat_views(state)
        return self._fn(streams, experts, fuse, feats, prev, self.guidance_scale)
