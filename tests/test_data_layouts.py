"""Token layouts (tokquant.data.layouts): against loop-by-loop references written from the
formulas in the module docstring, batched = one at a time, and unflatten round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokquant.data import TokenLayout, flatten, unflatten


def reference(codes, cards, layout, offsets, dedup):
    """The module docstring's formulas, one frame and one cell at a time."""
    codes = [list(map(int, row)) for row in codes]
    durations = None
    if dedup:
        kept, durations = [], []
        for row in codes:
            if kept and row == kept[-1]:
                durations[-1] += 1
            else:
                kept.append(row)
                durations.append(1)
        codes = kept
    G = len(cards)
    shift = [sum(cards[:g]) if offsets else 0 for g in range(G)]
    V = sum(cards) if offsets else max(cards)
    ids = [[c + shift[g] for g, c in enumerate(row)] for row in codes]
    T = len(ids)
    if layout == "interleave":
        out = [ids[t][g] for t in range(T) for g in range(G)]
    elif layout == "delay":
        out = [[V] * G for _ in range(T + G - 1)] if T else []
        for t in range(T):
            for g in range(G):
                out[t + g][g] = ids[t][g]
    else:
        out = ids
    return out, durations, V + (layout == "delay")


def _codes(rng, T, cards, runs=True):
    frames = np.stack([rng.integers(0, k, size=T) for k in cards], axis=1).reshape(T, len(cards))
    if runs and T:
        frames = np.repeat(frames, rng.integers(1, 4, size=T), axis=0)[:T]
    return frames.astype(np.int64)


CARDS = [(7,), (1024, 1024, 1024), (2, 65536), (5, 3)]


@pytest.mark.parametrize(
    "cards,layout,offsets,dedup",
    list(
        itertools.product(CARDS, ["parallel", "interleave", "delay"], [False, True], [False, True])
    ),  # fmt: skip
)
def test_encode_matches_the_formulas_and_round_trips(cards, layout, offsets, dedup):
    rng = np.random.default_rng(len(cards) * 7 + offsets * 3 + dedup)
    for T in (0, 1, 2, 9):
        codes = _codes(rng, T, cards)
        tokens, durations = flatten(codes, cards, layout=layout, offsets=offsets, dedup=dedup)
        want, want_durations, vocab = reference(codes, cards, layout, offsets, dedup)
        assert tokens.tolist() == want
        assert (durations is None) == (not dedup)
        if dedup:
            assert durations.tolist() == want_durations
            assert durations.sum() == T
        lay = TokenLayout(cards, layout, offsets, dedup)
        assert lay.vocab_size == vocab
        assert tokens.size == 0 or tokens.max() < vocab
        assert tokens.dtype == lay.dtype
        back = unflatten(tokens, cards, layout=layout, offsets=offsets, durations=durations)
        assert back.dtype == np.int64 and np.array_equal(back, codes.reshape(T, len(cards)))


@pytest.mark.parametrize("layout", ["parallel", "interleave", "delay"])
@pytest.mark.parametrize("dedup", [False, True])
def test_a_batch_of_utterances_equals_each_alone(layout, dedup):
    """The vectorised path (a whole shard) gives each utterance what encode gives it
    alone, including runs that continue across an utterance boundary and empty ones."""
    cards = (16, 4, 9)
    rng = np.random.default_rng(1)
    utts = [_codes(rng, T, cards) for T in (5, 0, 1, 12, 0, 3)]
    utts[3][:2] = utts[2][-1]  # utterance 3 starts with utterance 2's last frame
    offsets = np.concatenate([[0], np.cumsum([u.shape[0] for u in utts])])
    lay = TokenLayout(cards, layout, offsets=True, dedup=dedup)
    batch = lay.apply(np.concatenate(utts), offsets)
    assert len(batch) == len(utts)
    for u, codes in enumerate(utts):
        tokens, durations = lay.encode(codes)
        assert np.array_equal(batch.tokens(u), tokens)
        if dedup:
            assert np.array_equal(batch.durations_of(u), durations)


def test_vocabulary_pad_and_dtype_closed_forms():
    lay = TokenLayout((1024,) * 8, "delay", offsets=True)
    assert (lay.vocab_size, lay.pad_id, lay.dtype) == (8193, 8192, np.uint16)
    assert lay.column_offsets.tolist() == [1024 * g for g in range(8)]
    assert TokenLayout((1024,) * 8).vocab_size == 1024
    assert TokenLayout((1024,) * 8).pad_id is None
    assert TokenLayout((65536,), "delay").dtype == np.uint32  # 65536 ids + pad
    assert TokenLayout((65536, 65536), offsets=True).dtype == np.uint32
    assert TokenLayout((2**40,)).dtype == np.uint64


@pytest.mark.parametrize(
    "layout,tokens,message",
    [
        ("interleave", np.arange(5), "multiple of 2"),
        ("parallel", np.zeros((3, 3), np.int64), r"\[T, 2\]"),
        ("parallel", np.array([[0, 9]]), "column 1 holds id 9"),
        ("delay", np.array([[1, 2]]), "at least 2 rows"),
        ("delay", np.array([[1, 5], [2, 3], [8, 4]]), "pad id 8"),  # row 0, column 1: a pad
        ("parallel", np.array([[0.5, 1.0]]), "integers"),
    ],
)
def test_unflatten_refuses_what_no_export_gives(layout, tokens, message):
    with pytest.raises(ValueError, match=message):
        unflatten(tokens, [8, 8], layout=layout)


def test_dedup_needs_durations_and_checks_them():
    lay = TokenLayout((8, 8), dedup=True)
    tokens, durations = lay.encode(np.array([[1, 1], [1, 1], [2, 2]]))
    assert durations.tolist() == [2, 1]
    with pytest.raises(ValueError, match="durations"):
        lay.decode(tokens)
    with pytest.raises(ValueError, match="2 positive counts"):
        lay.decode(tokens, np.array([3, 0]))


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="layout must be one of"):
        TokenLayout((4,), "zigzag")
    with pytest.raises(ValueError, match="cardinalities must be positive"):
        TokenLayout(())
    with pytest.raises(ValueError, match=r"codes must be \[T, 2\]"):
        flatten(np.zeros((3, 3), np.int64), [4, 4])
    with pytest.raises(ValueError, match="out of range"):
        flatten(np.array([[4, 0]]), [4, 4])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=4),
    st.sampled_from(["parallel", "interleave", "delay"]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 30),
    st.integers(0, 2**32 - 1),
)
def test_round_trip_property(cards, layout, offsets, dedup, T, seed):
    codes = _codes(np.random.default_rng(seed), T, cards)
    tokens, durations = flatten(codes, cards, layout=layout, offsets=offsets, dedup=dedup)
    back = unflatten(tokens, cards, layout=layout, offsets=offsets, durations=durations)
    assert np.array_equal(back, codes)
    assert tokens.tolist() == reference(codes, cards, layout, offsets, dedup)[0]
