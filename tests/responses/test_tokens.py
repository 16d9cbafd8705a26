"""Token counts: a long text is encoded in pieces (so the GIL is not held for the whole of it) with exactly
the count of encoding it whole."""

from __future__ import annotations

import random
import string

import pytest

from respond.responses import tokens


@pytest.mark.parametrize("seed", range(4))
def test_long_texts_count_as_if_encoded_whole(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "     \n\t\r.,;:!?'\"()-_/éàüß漢字😀"
    size = 2 * tokens._PIECE + rng.randrange(3 * tokens._PIECE)
    if seed % 2:
        text = "".join(rng.choices(alphabet, k=size))
    else:
        words = ["word", "it's", "12345,", "  ", "\n", "don't", "x" * 40, "😀", "3.14"]
        text = " ".join(rng.choices(words, k=size // 5))
    whole = len(tokens._encoding().encode(text, disallowed_special=()))
    assert tokens.count_text(text) == whole


def test_a_long_text_without_cut_points_is_counted_whole() -> None:
    text = "1" * (3 * tokens._PIECE)  # no space to cut at (digits: quick to encode)
    assert tokens.count_text(text) == len(tokens._encoding().encode(text, disallowed_special=()))
