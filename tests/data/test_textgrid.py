import numpy as np
import pytest
from praatio import textgrid

from livegesture.data import Vocabulary, Word, read_words, word_ids_per_frame
from livegesture.errors import DataError


def _write_tg(path, tiers: dict[str, list[tuple[float, float, str]]], end: float = 3.0):
    tg = textgrid.Textgrid()
    for name, entries in tiers.items():
        tg.addTier(textgrid.IntervalTier(name, entries, 0.0, end))
    tg.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    return path


def test_read_words_lowercases_strips_and_skips_empty(tmp_path):
    p = _write_tg(tmp_path / "a.TextGrid", {
        "words": [(0.5, 0.9, " Hello"), (0.9, 1.2, "   "), (1.3, 1.8, "WORLD ")],
        "phones": [(0.5, 0.7, "HH"), (0.7, 0.9, "AH0")]})
    assert read_words(p) == [Word(0.5, 0.9, "hello"), Word(1.3, 1.8, "world")]
    phones = read_words(p, tier="phones")
    assert [w.text for w in phones] == ["hh", "ah0"]


def test_missing_tier_names_the_tiers(tmp_path):
    p = _write_tg(tmp_path / "y.TextGrid", {"phones": [(0.1, 0.2, "AA1")]})
    with pytest.raises(DataError, match=r"y\.TextGrid: no 'words' tier \(tiers: phones\)"):
        read_words(p)


def test_unreadable_and_missing_textgrid(tmp_path):
    bad = tmp_path / "bad.TextGrid"
    bad.write_text("definitely not a TextGrid")
    with pytest.raises(DataError, match=r"bad\.TextGrid: not a readable TextGrid"):
        read_words(bad)
    with pytest.raises(DataError, match=r"nope\.TextGrid: no such TextGrid file"):
        read_words(tmp_path / "nope.TextGrid")


def test_vocabulary_build_encode_and_round_trip(tmp_path):
    words = ["the", "cat", "The", "sat", "the", "cat", " mat", "<pad>", ""]
    v = Vocabulary.build(words)
    # specials first, then by descending count, ties alphabetical
    assert v.tokens == ["<pad>", "<unk>", "the", "cat", "mat", "sat"]
    assert len(v) == 6
    assert v.encode("THE ") == 2 and v.encode("dog") == 1 and v.encode("<pad>") == 0
    assert "cat" in v and "dog" not in v
    v2 = Vocabulary.load(v.save(tmp_path / "vocab.json"))
    assert v2 == v and v2.tokens == v.tokens
    assert Vocabulary.from_dict(v.to_dict()) == v
    assert Vocabulary.build(words, min_count=2).tokens == ["<pad>", "<unk>", "the", "cat"]


def test_vocabulary_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="must start with"):
        Vocabulary(["a", "b"])
    with pytest.raises(DataError, match="duplicate"):
        Vocabulary(["<pad>", "<unk>", "a", "a"])
    with pytest.raises(DataError):
        Vocabulary.from_dict({"words": []})
    p = tmp_path / "v.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match=r"v\.json: not a JSON vocabulary"):
        Vocabulary.load(p)


def test_word_ids_per_frame_uses_frame_centres():
    v = Vocabulary.build(["a", "b"])
    a, b = v.encode("a"), v.encode("b")
    words = [Word(0.0, 0.1, "a"), Word(0.1, 0.2, "b"), Word(0.5, 0.6, "zzz"), Word(9.0, 9.5, "a")]
    ids = word_ids_per_frame(words, 20, v, fps=30)
    assert ids.dtype == np.int64 and ids.shape == (20,)
    expected = np.zeros(20, np.int64)
    expected[0:3] = a          # centres 0.017, 0.05, 0.083
    expected[3:6] = b          # centres 0.117, 0.15, 0.183
    expected[15:18] = 1        # centres 0.517 .. 0.583: unknown word
    np.testing.assert_array_equal(ids, expected)


def test_word_ids_boundaries_are_half_open():
    v = Vocabulary.build(["x"])
    # fps 10: frame centres 0.05, 0.15, 0.25, 0.35 ...; [0.15, 0.35) holds frames 1 and 2
    ids = word_ids_per_frame([Word(0.15, 0.35, "x")], 6, v, fps=10)
    np.testing.assert_array_equal(ids, [0, 2, 2, 0, 0, 0])
    assert not word_ids_per_frame([], 4, v).any()
    assert word_ids_per_frame([Word(0.0, 1.0, "x")], 0, v).shape == (0,)
