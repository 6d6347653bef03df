"""`livegesture generate`: speech file in, motion files out (npz, BVH, glTF, FBX, MP4)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app
from .options import check_compile_option, check_precision_option, compile_option, precision_option


@app.command("generate")
def generate_cmd(
    speech: Path = typer.Argument(..., help="speech audio file (any rate, channels, sample type)"),
    out: Path = typer.Option(..., "-o", "--out", help="motion npz to write (BEAT2 layout)"),
    model: Optional[Path] = typer.Option(None, help="model file (default: the bundled demo model)"),
    seed: int = typer.Option(0, help="sampling seed"),
    bvh: Optional[Path] = typer.Option(None, help="also write a BVH of the SMPL-X skeleton"),
    bvh_units: str = typer.Option("m", help="BVH length unit: m (default; Blender's BVH importer at its "
                                            "default scale 1.0 then shows a human-sized figure), cm "
                                            "(tools that expect centimetres), mm or in"),
    glb: Optional[Path] = typer.Option(None, help="also write a glTF 2.0 binary (.glb): SMPL-X skeleton, "
                                                  "skinned mannequin, 30 fps animation (Blender, Unity, "
                                                  "Unreal, three.js, the viewer page)"),
    fbx: Optional[Path] = typer.Option(None, help="also write an FBX through Blender's FBX exporter (needs "
                                                  "pip install 'livegesture[blender]')"),
    video: Optional[Path] = typer.Option(None, help="also render an MP4 with the speech muxed in"),
    text: Optional[Path] = typer.Option(None, help="aligned words (TextGrid, 'words' tier) as an optional cue; "
                                              "needs a model trained with text"),
    smooth: float = typer.Option(0.0, help="causal low-pass of the output with this time constant in seconds "
                                           "(e.g. 0.08; 0 = raw model output); adds about that much lag"),
    root_in_place: bool = typer.Option(False, "--root-in-place",
                                       help="drop the horizontal (x/z) translation in every output, so the "
                                            "figure stays in place when imported"),
    raw: bool = typer.Option(False, "--raw", help="the model's output as it is, without the clean-up (token "
                                                  "hand-over blend, root held near its start, planted feet); "
                                                  "evaluation always scores this"),
    raw_root: bool = typer.Option(False, "--raw-root", help="keep the model's root motion (by default the root "
                                                            "is held near its start); feet are still planted"),
    seed_motion: Optional[Path] = typer.Option(None, "--seed-motion",
                                               help="start from this pose or these frames (a BEAT2 npz: the "
                                                    "avatar's pose, the end of a previous clip), so the clip "
                                                    "continues it without a jump"),
    chunk_seconds: float = typer.Option(1.0, help="audio pushed per streaming step (progress granularity)"),
    precision: str = precision_option(),
    compile: bool = compile_option(),
) -> None:
    """Generate full-body motion from a speech file by streaming it through the model
    (the same frames as a live stream: zero look-ahead), cleaned up for avatars by default."""
    from tqdm.auto import tqdm

    from ..data.audio import SAMPLE_RATE, load_audio
    from ..engine import LiveGesture
    from ..export import bvh_scale, check_output_path, distinct_outputs
    from ..export.fbx import require_blender
    from ..errors import ConfigError
    from ..motion import Motion
    from .checks import speech_long_enough

    try:
        bvh_scale(bvh_units)
    except ValueError as exc:
        raise ConfigError(f"--bvh-units: {exc}") from None
    if fbx is not None:
        require_blender()
    distinct_outputs(out=out, bvh=bvh, glb=glb, fbx=fbx, video=video)
    for path, what in ((out, "motion npz (--out)"), (bvh, "BVH file (--bvh)"), (glb, "glTF file (--glb)"),
                       (fbx, "FBX file (--fbx)"), (video, "video (--video)")):
        if path is not None:
            check_output_path(path, what, inputs=(speech,))
    check_precision_option(precision)
    check_compile_option(compile)
    if raw_root and (root_in_place or raw):
        raise ConfigError("--raw-root keeps the model's root: give it without --root-in-place and --raw")
    seed_frames = Motion.load(seed_motion) if seed_motion is not None else None
    lg = LiveGesture.load(model, precision=precision, compile=compile)
    audio = load_audio(speech, SAMPLE_RATE)
    speech_long_enough(audio, speech)
    from dataclasses import replace

    from ..cleanup import CleanupConfig
    from ..smoothing import SmoothingConfig

    cleanup = CleanupConfig.off() if raw else lg.cleanup
    if not raw and (root_in_place or raw_root):
        cleanup = replace(cleanup, root=replace(cleanup.root, mode="in_place" if root_in_place else "raw"))
    session = lg.stream(seed=seed, sample_rate=SAMPLE_RATE, smoothing=SmoothingConfig(smooth), cleanup=cleanup,
                        seed_motion=seed_frames)
    if text is not None:
        from ..data.textgrid import read_words

        session.push_words(read_words(text))  # raises for a model without text input
    step = max(1, int(chunk_seconds * SAMPLE_RATE))
    parts = []
    for start in tqdm(range(0, len(audio), step), desc="generate", unit="s", unit_scale=chunk_seconds,
                      disable=len(audio) < 10 * step):
        parts.append(session.push(audio[start:start + step]))
    parts.append(session.close())
    motion = Motion.concatenate(parts)
    if root_in_place:
        motion.trans[:, [0, 2]] = 0.0  # BEAT2 data are Y-up: keep the height only (the clean-up did too)
    motion.save(out)
    typer.echo(f"wrote {out} ({len(motion)} frames, {motion.duration:.2f} s)")
    if bvh is not None:
        from ..export import write_bvh

        write_bvh(motion, bvh, units=bvh_units)
        typer.echo(f"wrote {bvh} ({bvh_units})")
    if glb is not None:
        from ..export import write_gltf

        write_gltf(motion, glb)
        typer.echo(f"wrote {glb}")
    if fbx is not None:
        from ..export import write_fbx

        write_fbx(motion, fbx)
        typer.echo(f"wrote {fbx}")
    if video is not None:
        from ..export import render_video

        render_video(motion, video, audio=audio[: int(round(motion.duration * SAMPLE_RATE))],
                     sample_rate=SAMPLE_RATE, progress=True)
        typer.echo(f"wrote {video}")
