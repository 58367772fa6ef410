"""train.interpolate: batches that mix each frame with the next frame of its own input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_features, run_cli, write_config
from tokquant.errors import ConfigError, InputError
from tokquant.runners.frames import FrameSample
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.training import draw_batch, split_frames, train_tokenizer

LENGTHS = [7, 1, 0, 12, 5, 9]


def _labelled_frames(lengths: list[int]) -> np.ndarray:
    """Row r is [r, input of r]: a frame says where it came from, even mixed."""
    owner = np.repeat(np.arange(len(lengths)), lengths)
    return np.stack([np.arange(len(owner)), owner], axis=1).astype(np.float32)


@pytest.mark.parametrize("val_fraction", [0.0, 0.3])
def test_successor_is_the_next_frame_of_the_same_input_and_never_a_held_out_one(val_fraction):
    frames = _labelled_frames(LENGTHS)
    split = split_frames(frames, val_fraction, torch.Generator().manual_seed(3), LENGTHS)
    held_out = {int(r) for r in split.val[:, 0]}
    last_of_input = set(np.cumsum(LENGTHS)[np.array(LENGTHS) > 0] - 1)
    for i, (row, owner) in enumerate(split.train.tolist()):
        following = int(row) + 1
        expected_free = int(row) in last_of_input or following in held_out
        if expected_free:
            assert split.successor[i] == -1
        else:
            nxt = split.train[split.successor[i]]
            assert nxt.tolist() == [following, owner]
    assert (split.successor >= 0).sum() == sum(
        1
        for row in split.train[:, 0].tolist()
        if int(row) not in last_of_input and int(row) + 1 not in held_out
    )


def test_lengths_must_cover_the_frames():
    frames = _labelled_frames([4, 4])
    with pytest.raises(InputError, match="lengths sum to 7"):
        split_frames(frames, 0.0, torch.Generator(), [4, 3])


def test_interpolated_frames_lie_between_a_frame_and_its_successor():
    frames = _labelled_frames(LENGTHS)
    split = split_frames(frames, 0.2, torch.Generator().manual_seed(0), LENGTHS)
    x = draw_batch(split, 5000, 1.0, torch.Generator().manual_seed(1))
    allowed = {int(r) for r in split.train[split.successor >= 0, 0].tolist()}
    whole = x[:, 0] == x[:, 0].round()
    base = x[:, 0].floor().long()
    # every frame with a next one was moved strictly inside its segment (w = 0 or 1 is
    # measure-zero), every other frame came through unchanged, and no segment crosses
    # inputs: the input label of a mixed frame is its own input's
    assert all(int(b) in allowed for b in base[~whole])
    assert all(int(b) not in allowed for b in base[whole])
    assert torch.equal(x[:, 1], torch.from_numpy(np.repeat(np.arange(6), LENGTHS))[base].float())


def test_share_of_interpolated_frames_follows_the_setting():
    frames = np.random.default_rng(0).standard_normal((2000, 3)).astype(np.float32)
    split = split_frames(frames, 0.0, torch.Generator().manual_seed(0), [2000])
    x = draw_batch(split, 40_000, 0.3, torch.Generator().manual_seed(1))
    rows = {tuple(r) for r in split.train.tolist()}
    moved = sum(tuple(r) not in rows for r in x.tolist()) / len(x)
    assert moved == pytest.approx(0.3, abs=0.01)


def test_no_interpolation_draws_exactly_the_frames_it_always_drew():
    frames = np.random.default_rng(0).standard_normal((300, 4)).astype(np.float32)
    split = split_frames(frames, 0.1, torch.Generator().manual_seed(0), [300])
    gen, reference = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(3):
        x = draw_batch(split, 64, 0.0, gen)
        assert torch.equal(x, split.train[torch.randint(270, (64,), generator=reference)])


def test_ranks_together_draw_the_batch_of_one_process():
    frames = np.random.default_rng(0).standard_normal((500, 4)).astype(np.float32)
    split = split_frames(frames, 0.1, torch.Generator().manual_seed(0), [200, 300])
    whole = draw_batch(split, 96, 0.5, torch.Generator().manual_seed(2))
    parts = [draw_batch(split, 96, 0.5, torch.Generator().manual_seed(2), slice(r * 32, r * 32 + 32))
             for r in range(3)]  # fmt: skip
    assert torch.equal(torch.cat(parts), whole)


def test_interpolation_needs_lengths_and_a_share_in_range():
    config = TokenizerConfig.from_dict(
        {"quantizer": {"family": "rvq", "num_levels": 2, "num_embeddings": 8},
         "projection": {"kind": "none"}, "train": {"steps": 2, "interpolate": 0.5}}
    )  # fmt: skip
    frames = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    with pytest.raises(InputError, match="lengths per input"):
        train_tokenizer(config, frames)
    result = train_tokenizer(config, frames, lengths=[30, 34])
    assert np.isfinite(result.summary["val_mse"])
    config.train.interpolate = 1.5
    with pytest.raises(ConfigError, match=r"train.interpolate: must be in \[0, 1\]"):
        config.validate()


def test_cli_interpolates_whole_inputs_and_a_sample(tmp_path):
    feats = make_features(tmp_path / "f")
    config = write_config(tmp_path / "c.yaml", "rvq", train__interpolate=0.5)
    out = tmp_path / "a.safetensors"
    assert run_cli("train", "-c", config, "-d", feats, "-o", out).code == 0
    assert load_checkpoint(out).tokenizer.config.train.interpolate == 0.5
    again = run_cli("train", "-c", config, "-d", feats, "-o", out, "--overwrite",
                    "--interpolate", "0.25", "--max-frames", "200")  # fmt: skip
    assert again.code == 0, again.err
    assert load_checkpoint(out).tokenizer.config.train.interpolate == 0.25
    bad = run_cli("train", "-c", config, "-d", feats, "-o", tmp_path / "b.safetensors",
                  "--interpolate", "2")  # fmt: skip
    assert bad.code != 0 and "train.interpolate" in bad.err
    assert "Traceback" not in bad.err and not (tmp_path / "b.safetensors").exists()


# --max-frames: a sample keeps each frame's next frame -------------------------------------


def _sampled(frames: np.ndarray, lengths: list[int], size: int, seed: int, with_next: bool,
             chunk: int = 4) -> FrameSample:  # fmt: skip
    """``frames`` fed input by input, in chunks of ``chunk`` frames."""
    sample = FrameSample(size, seed, with_next)
    for start, n in zip(np.cumsum([0, *lengths[:-1]]), lengths, strict=True):
        for a in range(start, start + n, chunk):
            sample.add(frames[a : min(a + chunk, start + n)])
        sample.end_input()
    return sample


@pytest.mark.parametrize(("size", "chunk"), [(5, 1), (9, 4), (20, 3), (40, 100)])
def test_a_sample_keeps_the_same_frames_and_each_ones_next_frame_in_its_input(size, chunk):
    frames = _labelled_frames(LENGTHS)
    last_of_input = set(np.cumsum(LENGTHS)[np.array(LENGTHS) > 0] - 1)
    for seed in range(20):
        plain = _sampled(frames, LENGTHS, size, seed, False, chunk).frames()
        sample = _sampled(frames, LENGTHS, size, seed, True, chunk)
        kept, following = sample.frames(), sample.next_frames()
        assert np.array_equal(kept, plain)
        assert np.array_equal(following.positions, kept[:, 0].astype(np.int64))
        for row, nxt, present in zip(kept, following.frames, following.present, strict=True):
            assert present == (int(row[0]) not in last_of_input)
            if present:
                assert nxt.tolist() == [row[0] + 1, row[1]]


def test_a_sample_of_every_frame_draws_the_batches_of_whole_inputs():
    frames = np.random.default_rng(0).standard_normal((sum(LENGTHS), 3)).astype(np.float32)
    sample = _sampled(frames, LENGTHS, 100, 0, True, chunk=5)
    assert np.array_equal(sample.frames(), frames)
    whole = split_frames(frames, 0.3, torch.Generator().manual_seed(4), LENGTHS)
    sampled = split_frames(frames, 0.3, torch.Generator().manual_seed(4),
                           next_frames=sample.next_frames())  # fmt: skip
    assert torch.equal((whole.successor >= 0), (sampled.successor >= 0))
    gen, same = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(3):
        assert torch.equal(draw_batch(whole, 256, 0.7, gen), draw_batch(sampled, 256, 0.7, same))


def test_a_samples_held_out_frame_never_feeds_training_as_a_next_frame():
    frames = _labelled_frames(LENGTHS)
    for seed in range(20):
        sample = _sampled(frames, LENGTHS, 12, seed, True, chunk=3)
        following = sample.next_frames()
        split = split_frames(sample.frames(), 0.3, torch.Generator().manual_seed(seed),
                             next_frames=following)  # fmt: skip
        held_out = set(split.val[:, 0].tolist())
        for i, row in enumerate(split.train.tolist()):
            nxt = row[0] + 1
            slot = int(np.flatnonzero(following.positions == row[0])[0])
            expected = following.present[slot] and nxt not in held_out
            assert (split.successor[i] >= 0) == expected
            if expected:
                assert split.neighbours[split.successor[i]].tolist() == [nxt, row[1]]
