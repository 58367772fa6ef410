"""train.interpolate: batches that mix each frame with the next frame of its own input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import make_features, run_cli, write_config
from tokquant.config import TokenizerConfig
from tokquant.errors import ConfigError, InputError
from tokquant.formats.checkpoint import load_checkpoint
from tokquant.train import draw_batch, split_frames, train_tokenizer

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


def test_cli_interpolates_whole_inputs_and_not_a_sample(tmp_path):
    feats = make_features(tmp_path / "f")
    config = write_config(tmp_path / "c.yaml", "rvq", train__interpolate=0.5)
    out = tmp_path / "a.safetensors"
    assert run_cli("train", "-c", config, "-d", feats, "-o", out).code == 0
    assert load_checkpoint(out).tokenizer.config.train.interpolate == 0.5
    again = run_cli("train", "-c", config, "-d", feats, "-o", out, "--overwrite",
                    "--interpolate", "0.25", "--max-frames", "200")  # fmt: skip
    assert again.code == 0
    assert "train.interpolate is 0 for this run" in again.err + again.out
    assert load_checkpoint(out).tokenizer.config.train.interpolate == 0.0
    bad = run_cli("train", "-c", config, "-d", feats, "-o", tmp_path / "b.safetensors",
                  "--interpolate", "2")  # fmt: skip
    assert bad.code != 0 and "train.interpolate" in bad.err
    assert "Traceback" not in bad.err and not (tmp_path / "b.safetensors").exists()
