"""Word alignments from (Montreal Forced Aligner) TextGrids and a word vocabulary."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..body.constants import FPS
from ..errors import DataError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


@dataclass(frozen=True)
class Word:
    """One aligned word: [start, end) in seconds and its lower-cased text."""

    start: float
    end: float
    text: str


def read_words(path: str | os.PathLike, tier: str = "words") -> list[Word]:
    """Words of an interval tier, in time order; empty labels (silences) are skipped."""
    from praatio import textgrid

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such TextGrid file")
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as exc:  # praatio raises many exception types on malformed input
        raise DataError(f"{path}: not a readable TextGrid ({exc.__class__.__name__}: {exc})"
                        ) from None
    if tier not in tg.tierNames:
        raise DataError(f"{path}: no {tier!r} tier (tiers: {', '.join(tg.tierNames) or 'none'})")
    t = tg.getTier(tier)
    if not isinstance(t, textgrid.IntervalTier):
        raise DataError(f"{path}: tier {tier!r} is a point tier, expected an interval tier")
    words = []
    for start, end, label in t.entries:
        text = label.strip().lower()
        if text:
            words.append(Word(float(start), float(end), text))
    words.sort(key=lambda w: (w.start, w.end))
    return words


def _normalise(word: str) -> str:
    return word.strip().lower()


class Vocabulary:
    """Word -> id. Id 0 is ``<pad>`` (no word, silence), id 1 is ``<unk>``."""

    def __init__(self, tokens: Sequence[str] = (PAD, UNK)) -> None:
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise DataError(f"vocabulary must start with {PAD!r}, {UNK!r}; got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            dup = sorted(t for t, c in Counter(tokens).items() if c > 1)
            raise DataError(f"vocabulary has duplicate tokens: {', '.join(dup[:10])}")
        self.tokens: list[str] = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, words: Iterable[str], min_count: int = 1) -> "Vocabulary":
        """Words seen at least `min_count` times, most frequent first (ties alphabetical)."""
        return cls.from_counts(Counter(_normalise(w) for w in words), min_count)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_count: int = 1) -> "Vocabulary":
        """:meth:`build` from word counts (normalised words -> occurrences)."""
        counts = Counter(counts)
        for special in ("", PAD, UNK):
            counts.pop(special, None)
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    def encode(self, word: str) -> int:
        """Id of `word` (lower-cased, stripped); unknown words give 1 (``<unk>``)."""
        return self._index.get(_normalise(word), UNK_ID)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, word: str) -> bool:
        return _normalise(word) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Vocabulary":
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list) \
                or not all(isinstance(t, str) for t in d["tokens"]):
            raise DataError("vocabulary: expected a mapping {'tokens': [str, ...]}")
        return cls(d["tokens"])

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0) + "\n",
                        encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such vocabulary file")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a JSON vocabulary ({exc})") from None
        try:
            return cls.from_dict(d)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None


def as_words(words: Iterable[Any]) -> list[Word]:
    """Words given as :class:`Word`, ``(start, end, text)`` tuples or ``{"word"|"text", "start",
    "end"}`` mappings (seconds), validated and sorted by start; :class:`DataError` names a bad one."""
    out = []
    for i, w in enumerate(words):
        try:
            if isinstance(w, Word):
                start, end, text = w.start, w.end, w.text
            elif isinstance(w, dict):
                text = w.get("word", w.get("text"))
                start, end = w["start"], w["end"]
            else:
                start, end, text = w
            start, end = float(start), float(end)
        except (KeyError, TypeError, ValueError):
            raise DataError(f"word {i}: expected (start, end, text) or {{'word', 'start', 'end'}}, "
                            f"got {w!r}") from None
        if not isinstance(text, str):
            raise DataError(f"word {i}: the text must be a string, got {text!r}")
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start:
            raise DataError(f"word {i} ({text!r}): needs finite times with 0 <= start <= end, "
                            f"got start={start} end={end}")
        out.append(Word(start, end, _normalise(text)))
    out.sort(key=lambda w: (w.start, w.end))
    return out


def words_still_due(words: Sequence[Word], t: float) -> list[Word]:
    """The words that can still cover a frame starting at or after `t` seconds (end > t)."""
    return [w for w in words if w.end > t]


def add_words(current: Sequence[Word], words: Iterable[Any], t: float) -> tuple[list[Word], int]:
    """`current` plus the validated `words` (see :func:`as_words`) that are still due at `t`, in time
    order, and how many of `words` were still due (live streams ignore words that come too late)."""
    due = words_still_due(as_words(words), t)
    merged = sorted([*current, *due], key=lambda w: (w.start, w.end)) if due else list(current)
    return merged, len(due)


def word_ids_per_frame(words: Sequence[Word], n_frames: int, vocab: Vocabulary,
                       fps: float = FPS, start_frame: int = 0) -> np.ndarray:
    """int64 (n_frames,): frame ``start_frame + i`` gets the id of the word whose [start, end)
    contains the frame centre (start_frame + i + 0.5) / fps, else 0 (``<pad>``)."""
    ids = np.zeros(n_frames, np.int64)
    if n_frames <= 0 or not words:
        return ids
    centres = (start_frame + np.arange(n_frames) + 0.5) / fps
    for w in words:
        lo = np.searchsorted(centres, w.start, side="left")
        hi = np.searchsorted(centres, w.end, side="left")
        if hi > lo:
            ids[lo:hi] = vocab.encode(w.text)
    return ids
