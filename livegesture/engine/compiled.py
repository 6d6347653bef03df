"""The lone stream's model step as one compiled program (docs/design.md §6 "Compiled step").

A KV-cached base step runs ~2,800 aten calls; on a CPU their fixed cost alone is above the
step's memory floor. ``torch.compile`` (inductor with its C++ wrapper) turns
:meth:`LiveGestureModel.step_flat` into one generated C++ program. Its float32 products call
the streaming kernel (:mod:`livegesture.model.stream_kernel`: tile-packed weights read once, in
order, where the library's GEMMs read cold weights at a third of the bandwidth),
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
* the first compile takes about a minute on a CPU; inductor and AOTAutograd keep it in their
  on-disk caches, so a second process re-traces and loads it (measured: 8-12 s for all the programs
  of the demo or of the base model); :class:`CompiledStep` compiles at construction, on a scratch
  state, so that a live stream never stalls on it.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import LiveGestureError
from ..model import stream_kernel
from ..model.config import FRAMES_PER_TOKEN
from ..streaming.state import StreamState

__all__ = ["CompiledDecode", "CompiledEncode", "CompiledStep", "compile_available"]

#: inductor options: the C++ wrapper (no Python between the generated kernels). The weights stay
#: inputs of the program, not frozen constants: inductor's freezing made no faster step (measured:
#: base 10.18-10.49 ms frozen against 9.76-9.77 ms, in a run) and turns off AOTAutograd's cache, so
#: every process re-traced; without it a second process loads the compiled programs about 2x faster
#: (docs/design.md §6, stop 29)
INDUCTOR_OPTIONS = {"cpp_wrapper": True}

#: the start of inductor's warning about ops on complex tensors (the mel's rfft), filtered while compiling
COMPLEX_WARNING = "Torchinductor does not support code generation for complex operators"


def compile_available(device: torch.device | str = "cpu") -> str | None:
    """None when this machine can compile the step, else the reason (one line)."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if torch.device(device).type == "cpu" and stream_kernel.cxx_compiler() is None:
        return "compiling the step needs a C++ compiler (g++ or clang++, or $CXX) on the PATH"
    return None


def _require_compiler(device: torch.device | str) -> None:
    why = compile_available(device)
    if why is not None:
        raise LiveGestureError(why)


def _kernel(asked: bool, device: torch.device, what: str) -> tuple[bool, str | None]:
    """(whether a compiled program's float32 products run on the streaming kernel, why not)."""
    if not asked:
        return False, "not asked for"
    note = stream_kernel.load() if device.type == "cpu" else "the streaming product kernel is a CPU kernel"
    if note is not None:
        warnings.warn(f"{note}; the compiled {what} keeps the library's products", stacklevel=3)
    return note is None, note


def _compile(fn, warm, what: str):
    """``torch.compile`` of `fn` for fixed shapes, compiled now by `warm(program)`; a compiler
    failure becomes one :class:`LiveGestureError` line."""
    prog = torch.compile(fn, dynamic=False, fullgraph=True, options=INDUCTOR_OPTIONS)
    try:
        with warnings.catch_warnings():
            # the audio encoder's rfft has a complex result, which inductor leaves to the library's
            # op as eager runs it: its "complex operators ... worse than eager" warning does not
            # apply, and a user of --compile should not read it as a fault
            warnings.filterwarnings("ignore", message=COMPLEX_WARNING)
            warm(prog)
    except LiveGestureError:
        raise
    except Exception as e:  # an inductor / compiler failure: one line, not its traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LiveGestureError(f"torch.compile of the {what} failed: {first[:300]}") from e
    return prog


class CompiledStep:
    """``model.step(state, feats, prev, scale)`` of one token for states of `batch` sessions,
    through a compiled :meth:`~livegesture.model.LiveGestureModel.step_flat`.

    Compiled once for the model's shapes at batch `batch` with guidance `guided` (graphs are
    specialised to shapes: another batch size is another compile, refused here). `tokens`
    positions per call: 1 for the engine; ``bench`` also compiles the window recompute
    (``tokens = window``) so that it compares the KV-cached step with a recompute in the same mode.
    That is a program of its own (its own dynamo cache), so the one-token program never checks its
    guards."""

    def __init__(self, model: torch.nn.Module, batch: int = 1, guided: bool = True,
                 guidance_scale: float = 1.0, kernel: bool = True, tokens: int = 1):
        _require_compiler(model.null_audio.device)
        self.model, self.batch, self.guided = model, int(batch), bool(guided)
        self.guidance_scale = float(guidance_scale)
        self.tokens = int(tokens)
        if self.tokens < 1:
            raise ValueError(f"tokens must be >= 1, got {tokens}")
        #: whether the program's float32 products run on the streaming kernel, and if not, why not
        self.kernel, self.kernel_note = _kernel(kernel, model.null_audio.device, "step")
        model.use_stream_kernel(self.kernel)
        model.freeze_inference_weights()
        # the kernel switch is the model's (dynamo guards on it: one model, one kind of program)
        self._fn = _compile(model.step_flat if self.tokens == 1 else _window_flat(model), self._warm,
                            "model step")

    def _warm(self, prog) -> None:
        """Compile now, on a scratch state of the same shapes (two steps: the program must be reused)."""
        m = self.model
        state = m.init_state(self.batch, guidance=self.guided)
        feats = torch.zeros(self.batch, FRAMES_PER_TOKEN * self.tokens, m.config.audio.dim,
                            dtype=m.null_audio.dtype, device=m.null_audio.device)
        prev = torch.full((self.batch, m.num_regions, self.tokens), m.bos_id, dtype=torch.long,
                          device=feats.device)
        with torch.no_grad():  # one eager step first: the lazily built weight copies, packed copies
            # and tables exist before the trace (made inside it, they would be remade every call)
            m.step(state, feats, prev, self.guidance_scale)
            for _ in range(2):
                experts, fuse = m.flat_views(state)
                prog(state["streams"], experts, fuse, feats, prev, self.guidance_scale)

    @torch.no_grad()
    def __call__(self, state: StreamState, feats: torch.Tensor, prev: torch.Tensor,
                 guidance_scale: float) -> torch.Tensor:
        """Fused logits (B, R, n, K) of its n = `tokens` positions, the state advanced in place (as
        ``model.step``)."""
        streams: torch.Tensor = state["streams"]  # type: ignore[assignment]
        if prev.shape[0] != self.batch or prev.shape[2] != self.tokens or \
                streams.shape[1] != (2 if self.guided else 1):
            raise LiveGestureError(f"the compiled step takes {self.tokens} token(s) of {self.batch} session(s) "
                                   f"({'with' if self.guided else 'without'} guidance), got prev "
                                   f"{tuple(prev.shape)} and {streams.shape[1]} stream(s)")
        if float(guidance_scale) != self.guidance_scale:
            raise LiveGestureError(f"the step was compiled for guidance scale {self.guidance_scale}, "
                                   f"got {guidance_scale}")
        experts, fuse = self.model.flat_views(state)
        return self._fn(streams, experts, fuse, feats, prev, self.guidance_scale)


def _window_flat(model):
    """``model.step_flat`` behind a function of its own: torch.compile keeps its programs per code
    object, so the window program does not join the one-token step's cache."""
    def window_flat(*args):
        return model.step_flat(*args)
    return window_flat


class CompiledDecode:
    """The grouped tokenizer decoder (:class:`~livegesture.tokenizer.grouped.GroupedDecoder`) of
    one token of one session as one compiled program: what the one-row cores decode with when the
    engine compiles (an eager base decode is ~60 aten calls reading 27 MB of weights, about half
    the compute of a compiled step). Same rules as :class:`CompiledStep`: the decoder's float32
    products run on the streaming kernel, its weights are frozen, and it is not bit-equal to the
    eager decode (batched cores keep that one)."""

    def __init__(self, decoder, device: torch.device | str = "cpu", kernel: bool = True):
        _require_compiler(device)
        self.decoder = decoder
        self.regions = len(decoder.tok)
        #: whether the program's float32 products run on the streaming kernel, and if not, why not
        self.kernel, self.kernel_note = _kernel(kernel, torch.device(device), "decoder")
        decoder.use_stream_kernel(self.kernel)
        decoder._cache.frozen = True
        self._device = torch.device(device)
        self._fn = _compile(decoder.decode_flat, self._warm, "tokenizer decoder")

    def _warm(self, prog) -> None:
        state = self.decoder.init_state(1, self._device)
        ids = torch.zeros(1, self.regions, 1, dtype=torch.long, device=self._device)
        with torch.no_grad():
            self.decoder.decode(ids, state)  # eager first: the stacked and packed copies
            for _ in range(2):
                prog(ids, state)

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, state: StreamState) -> list[torch.Tensor]:
        """Frames (1, 4, D_r) per region of one token ids (1, R, 1), the histories advanced in place."""
        if tuple(ids.shape) != (1, self.regions, 1):
            raise LiveGestureError(f"the compiled decoder takes one token of one session, (1, {self.regions}, 1) "
                                   f"ids, got {tuple(ids.shape)}")
        return self._fn(ids, state)


class CompiledEncode:
    """The audio encoder's step on one token's samples of one session as compiled programs, one
    per token phase (token k's samples start at ``token_end_sample(k - 1)``: three phases modulo
    1600, each with its own block length and mel framing). The phase is read on the host first
    (:meth:`~livegesture.audio.encoder.AudioEncoder.phase`), so each program is a function of
    tensors only. The products stay the library's (the encoder's weights are a few MB, read by
    14-row products: not the cold batch-1 case the streaming kernel is for)."""

    PHASES = 3

    def __init__(self, encoder, device: torch.device | str = "cpu"):
        _require_compiler(device)
        self.encoder, self._device = encoder, torch.device(device)
        self._fn = _compile(encoder.step_at, self._warm, "audio encoder")

    def _warm(self, prog) -> None:
        from ..audio.encoder import frames_end_sample

        state = self.encoder.init_state(1, self._device)
        ends = [frames_end_sample(FRAMES_PER_TOKEN * k) for k in range(2 * self.PHASES + 1)]
        with torch.no_grad():
            for a, b in zip(ends, ends[1:]):  # every phase twice: each program must be reused
                x = torch.zeros(1, b - a, device=self._device)
                prog(x, state, self.encoder.phase(state))

    @torch.no_grad()
    def __call__(self, samples: torch.Tensor, state: StreamState) -> torch.Tensor:
        """Features (1, F, d) of the frames that one token's samples (1, N) complete (as ``step``)."""
        if samples.dim() != 2 or samples.shape[0] != 1:
            raise LiveGestureError(f"the compiled audio encoder takes one session's samples (1, N), "
                                   f"got {tuple(samples.shape)}")
        return self._fn(samples, state, self.encoder.phase(state))
