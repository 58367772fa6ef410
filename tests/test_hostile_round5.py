"""Round 5 of the hostile-input sweep (issue 37): vocoder files and state, eval, Ray,
the job requests, the Ray Data and ``datasets.map`` cells, the corpus shard reader, and
what a new user met. Each test is numbered by the issue's item and failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import tokquant
from tests.conftest import SAMPLES, content_id, run_cli
from tests.test_hostile_round3 import one_error
from tokquant.errors import FormatError, InputError

ROOT = Path(__file__).resolve().parent.parent
SPEAKERS = ("us_m", "us_f")


@pytest.fixture(scope="module")
def ckpt(logmel_rvq) -> Path:
    return logmel_rvq


@pytest.fixture(scope="module")
def tok(ckpt):
    return tokquant.load(ckpt)


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> Path:
    """``wav/spk1/x.flac`` and ``wav/spk2/x.flac``: two speakers, one base name."""
    root = tmp_path_factory.mktemp("voices")
    for i, speaker in enumerate(SPEAKERS, 1):
        (root / "wav" / f"spk{i}").mkdir(parents=True)
        src = sorted((SAMPLES / speaker).glob("*.flac"))[0]
        (root / "wav" / f"spk{i}" / "x.flac").write_bytes(src.read_bytes())
    return root


@pytest.fixture(scope="module")
def tokens(ckpt, voices) -> Path:
    res = run_cli("encode", ckpt, voices / "wav", "--out", voices / "tok", "-q")
    assert res.code == 0, res.err
    return voices / "tok"


def small_vocoder(tok, path: Path, edit=None) -> Path:
    """A small untrained decoder for ``tok`` saved as train-vocoder saves one; ``edit``
    changes its state before saving."""
    from tokquant.decoders.trained.file import save_vocoder
    from tokquant.decoders.trained.training import VocoderTraining, build
    from tokquant.engines.outputs import made_by

    vocoder = build(tok, VocoderTraining(dim=16, intermediate=32, layers=1))
    if edit is not None:
        with torch.no_grad():
            edit(vocoder)
    save_vocoder(vocoder, path, made_by(tok))
    return path


def retag_vocoder(src: Path, dst: Path, *, config=None, tensors=None) -> Path:
    """``src`` with its config JSON updated by ``config`` and tensors replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as fh:
        meta = fh.metadata()
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    if config is not None:
        meta["config"] = json.dumps({**json.loads(meta["config"]), **config})
    state.update(tensors or {})
    save_file(state, str(dst), metadata=meta)
    return dst


# 1, 16. eval --plot is an output folder ---------------------------------------------------


def test_eval_plot_never_writes_through_a_link_and_an_existing_file_is_refused_first(
    ckpt, voices, tokens, tmp_path
):
    pytest.importorskip("matplotlib")
    plots, outside = tmp_path / "plots", tmp_path / "outside"
    plots.mkdir()
    outside.mkdir()
    (plots / "spk1").symlink_to("../outside")
    res = run_cli("eval", ckpt, tokens, "--audio", voices / "wav", "--plot", plots)
    assert res.code == 1 and "Traceback" not in res.err
    assert "plots/spk1 is a symbolic link, not followed" in res.err
    assert list(outside.iterdir()) == [] and (plots / "spk2" / "x.png").is_file()
    existing = tmp_path / "file.png"
    existing.write_bytes(b"mine")
    res = run_cli("eval", ckpt, tokens, "--audio", voices / "wav", "--plot", existing)
    assert "exists and is not a folder" in one_error(res)
    assert "eval:" not in res.err and existing.read_bytes() == b"mine"  # refused before scoring


# 2. train-vocoder never replaces an input ----------------------------------------------


def test_train_vocoder_out_naming_an_input_is_refused_even_with_overwrite(ckpt, tmp_path):
    data = tmp_path / "a.flac"
    data.write_bytes(sorted((SAMPLES / "us_m").glob("*.flac"))[0].read_bytes())
    kept = ckpt.read_bytes()
    for out in (data, ckpt):
        before = out.read_bytes()
        res = run_cli("train-vocoder", ckpt, "-d", data, "-o", out, "--overwrite",
                      "--steps", "1", "--batch", "1")  # fmt: skip
        assert "output path equals an input" in one_error(res)
        assert out.read_bytes() == before
    assert ckpt.read_bytes() == kept
    state = tmp_path / "v.safetensors.state"  # written as the run goes: a link is refused first
    state.symlink_to(tmp_path / "elsewhere")
    res = run_cli("train-vocoder", ckpt, "-d", data, "-o", tmp_path / "v.safetensors")
    assert "exists and is a symbolic link" in one_error(res)
    assert not (tmp_path / "elsewhere").exists()


def test_train_out_naming_its_config_is_refused_even_with_overwrite(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "frontend: {kind: logmel, n_mels: 40}\nquantizer: {family: bsq, code_dim: 8}\n"
    )
    res = run_cli("train", "-c", config, "-d", SAMPLES / "us_m", "-o", config, "--overwrite")
    assert "output path equals an input" in one_error(res) and "bsq" in config.read_text()


def test_stats_plot_never_replaces_an_input_and_a_folder_is_refused_first(ckpt, tokens):
    token_file = tokens / "spk1" / "x.tokens.safetensors"
    before = token_file.read_bytes()
    res = run_cli("stats", ckpt, token_file, "--plot", token_file)
    assert "output path equals an input" in one_error(res) and token_file.read_bytes() == before
    res = run_cli("stats", ckpt, token_file, "--plot", tokens)
    assert "is a folder; name the plot file to write" in one_error(res)


# 3. every field of every request is checked ---------------------------------------------


@pytest.mark.parametrize(
    ("job", "args", "field", "value"),
    [
        ("EncodeJob", ("c", ["i"], "o"), "overwrite", "false"),
        ("EncodeJob", ("c", ["i"], "o"), "channels", "Split"),
        ("EncodeJob", ("c", ["i"], "o"), "channels", "bogus"),
        ("EncodeJob", ("c", ["i"], "o"), "shards", "no"),
        ("EncodeJob", ("c", ["i"], "o"), "shard_size", 0),
        ("EncodeJob", ("c", ["i"], "o"), "batch_frames", 1.5),
        ("EncodeJob", ("c",), "inputs", "just-a-string"),
        ("EncodeJob", ("c", ["i"], "o"), "engine", "spark"),
        ("DecodeJob", ("c", ["t"], "o"), "audio", 1),
        ("DecodeJob", ("c", ["t"], "o"), "mel_match", "0.5"),
        ("TrainVocoderJob", ("c", ["d"], "o"), "adversarial", "no"),
        ("TrainVocoderJob", ("c", ["d"], "o"), "speeds", 1.0),
        ("TrainJob", ("c", ["d"], "o"), "lr", float("nan")),
        ("ExportJob", ("c", "o"), "offsets", "no"),
        ("ExportJob", ("c", "o"), "to", "csv"),
        ("EvalJob", ("c", ["t"], ["a"]), "threads", 0),
        ("ImportJob", ("vqp", "s", "o"), "overwrite", None),
    ],
)
def test_every_request_field_is_checked_when_made(job, args, field, value):
    import tokquant.jobs as jobs

    extra = {"to": "parquet"} if job == "ExportJob" and field != "to" else {}
    if args == ("c",):  # the field under test is a positional one: name the rest
        extra = {"out": "o"}
    with pytest.raises(ValueError, match=f"{job}.{field} must") as err:
        getattr(jobs, job)(*args, **{**extra, field: value})
    assert "\n" not in str(err.value)


# 4. eval pairs by the whole key -----------------------------------------------------------


def test_eval_pairs_tokens_with_their_own_speaker_whatever_the_order(
    ckpt, voices, tokens, tmp_path
):
    def scores(*audio):
        res = run_cli("eval", ckpt, tokens, *sum((["--audio", a] for a in audio), []), "--json")
        assert res.code == 0, res.err
        return {row["key"]: row["mel_distance"] for row in json.loads(res.out)["rows"]}

    whole = scores(voices / "wav")

    assert scores(voices / "wav" / "spk2", voices / "wav" / "spk1") == whole
    assert whole["spk1/x"] != whole["spk2/x"]
    # a base name alone names two references: refused, never guessed
    single = tmp_path / "y.tokens.safetensors"
    single.write_bytes((tokens / "spk2" / "x.tokens.safetensors").read_bytes())
    res = run_cli("eval", ckpt, tokens / "spk1" / "x.tokens.safetensors", single,
                  "--audio", voices / "wav" / "spk1", "--audio", voices / "wav" / "spk2")  # fmt: skip
    assert res.code == 1 and "its key (x) names 2 reference inputs" in res.err
    assert "y.tokens.safetensors: no reference audio has its key (y)" in res.err


# 5, 6, 10, 17. vocoder files: geometry, sizes and values checked; no NaN audio written --


def test_a_vocoder_that_decodes_nan_writes_nothing(tok, ckpt, tokens, tmp_path):
    def huge(vocoder):
        vocoder.std.fill_(1e-38)  # finite and > 0, yet the normalised features overflow

    voc = small_vocoder(tok, tmp_path / "v.safetensors", huge)
    res = run_cli("decode", ckpt, tokens, "--audio", "--vocoder", voc, "--out", tmp_path / "o")
    assert res.code == 1 and "decoded audio holds NaN or Inf" in res.err
    assert not list((tmp_path / "o").rglob("*.wav"))
    with pytest.raises(InputError, match="NaN or Inf"):
        tok.decode_audio(np.zeros((10, 3), dtype=np.int64), vocoder=voc)
    zero = retag_vocoder(voc, tmp_path / "z.safetensors", tensors={"std": torch.zeros(40)})
    with pytest.raises(FormatError, match="std holds a value <= 0"):
        tok.decode_audio(np.zeros((10, 3), dtype=np.int64), vocoder=zero)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_fft": 100}, "n_fft: must be at least hop"),
        ({"layers": 1_000_000}, r"layers: must be an integer in \[1, 64\]"),
        ({"layers": 0}, r"layers: must be an integer in \[1, 64\]"),
        ({"hop": 160.0}, "hop: must be an integer"),
        ({"intermediate": True}, "intermediate: must be an integer"),
        ({"kernel": 0}, "kernel: must be an integer"),
        ({"kernel": 4}, "kernel: must be odd"),
        ({"dim": 10**12}, "dim: must be an integer in"),
    ],
)
def test_a_vocoder_config_is_bounded_before_anything_is_built(tok, tmp_path, config, message):
    from tokquant.decoders.trained.file import load_vocoder

    voc = small_vocoder(tok, tmp_path / "v.safetensors")
    bad = retag_vocoder(voc, tmp_path / "bad.safetensors", config=config)
    with pytest.raises(FormatError, match=message) as err:
        load_vocoder(bad)
    assert "\n" not in str(err.value)


def test_vocoder_weights_of_another_dtype_are_named_by_dtype(tok, tmp_path):
    from tokquant.decoders.trained.file import load_vocoder

    voc = small_vocoder(tok, tmp_path / "v.safetensors")
    weight = load_vocoder(voc).vocoder.embed.weight
    bad = retag_vocoder(voc, tmp_path / "i.safetensors",
                        tensors={"embed.weight": weight.to(torch.int32)})  # fmt: skip
    with pytest.raises(FormatError, match="embed.weight has dtype int32, not floating point"):
        load_vocoder(bad)


# 7. pretrained weights are dtype-checked ----------------------------------------------------


def test_pretrained_weights_that_are_complex_or_integer_are_refused(tmp_path):
    pytest.importorskip("vocos")
    from vocos.pretrained import Vocos

    from tests.test_pretrained_vocoders import VOCOS_YAML
    from tokquant.decoders.pretrained.networks import load_pretrained

    folder = tmp_path / "vocos"
    folder.mkdir()
    (folder / "config.yaml").write_text(VOCOS_YAML)
    state = Vocos.from_hparams(str(folder / "config.yaml")).state_dict()
    name = "backbone.embed.weight"
    for value, message in (
        (torch.full(state[name].shape, complex("nan"), dtype=torch.complex64), "NaN or Inf"),
        (torch.zeros(state[name].shape, dtype=torch.complex64), "dtype complex64"),
        (torch.zeros(state[name].shape, dtype=torch.int64), "dtype int64"),
    ):
        torch.save({**state, name: value}, folder / "pytorch_model.bin")
        with pytest.raises(FormatError, match=message):
            load_pretrained(folder)


# 8. Ray: a silent address, shard_size 0 ----------------------------------------------------


def test_ray_address_with_nothing_listening_fails_fast_in_one_line(ckpt, voices, tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "c"
    res = run_cli("encode", ckpt, voices / "wav", "--out", out, "--shards", "--engine", "ray",
                  "--ray-address", f"127.0.0.1:{port}")  # fmt: skip
    assert "cannot reach the Ray cluster at 127.0.0.1" in one_error(res)
    assert not out.exists()
    res = run_cli("encode", ckpt, voices / "wav", "--out", out, "--shards", "--engine", "ray",
                  "--shard-size", "0")  # fmt: skip
    assert "shard_size must be at least 1" in one_error(res) and not out.exists()


# 9. corpus shards are opened as every input is ------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_shard_that_is_a_fifo_or_a_device_fails_in_one_line(ckpt, voices, tmp_path, kind):
    corpus = tmp_path / "c"
    assert run_cli("encode", ckpt, voices / "wav", "--out", corpus, "--shards", "-q").code == 0
    shard = next(corpus.glob("shard-*.safetensors"))
    shard.unlink()
    if kind == "fifo":
        os.mkfifo(shard)
    else:
        shard.symlink_to("/dev/zero")
    what = "a FIFO" if kind == "fifo" else "a device"
    script = (
        "import sys\nfrom tests.conftest import run_cli\n"
        "from tokquant.formats.corpus import Corpus\n"
        f"c, ck = {str(corpus)!r}, {str(ckpt)!r}\n"
        "for args in (['verify', c], ['decode', ck, c, '--out', c + '-d'], ['stats', ck, c],"
        " ['export', c, '--out', c + '-x', '--to', 'km', '--layout', 'interleave']):\n"
        "    res = run_cli(*args)\n"
        "    print(args[0], res.code, [l for l in res.err.splitlines() if 'error' in l][:1])\n"
        "try:\n    Corpus(c)['spk1/x']\nexcept Exception as exc:\n"
        "    print('api', type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5 and "Traceback" not in done.stdout + done.stderr
    for line in lines:
        assert what in line and "not a regular file" in line, line
    assert all(line.split()[1] in ("1", "2") for line in lines[:4])


# 11, 18. train-vocoder state and recipe ---------------------------------------------------


def _interrupted_state(ckpt: Path, tmp_path: Path) -> tuple[Path, dict]:
    from tokquant.jobs import TrainVocoderJob

    class StopAt:
        def start(self, label, total):
            pass

        def advance(self, n=1):
            pass

        def update(self, step, metrics):
            if step == 3:
                raise KeyboardInterrupt

    out = tmp_path / "v.safetensors"
    job = TrainVocoderJob(ckpt, [SAMPLES / "us_m"], out, steps=20, batch=2, segment_frames=8,
                          speeds=(1.0,))  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        job.run(StopAt())
    state = out.with_name(out.name + ".state")
    return out, torch.load(state, weights_only=True)


def test_a_state_with_the_right_ids_and_bad_content_is_one_line(ckpt, tmp_path):
    out, good = _interrupted_state(ckpt, tmp_path)
    state_path = out.with_name(out.name + ".state")
    first = next(iter(good["model"]))
    bad_states = {
        "no model": {k: v for k, v in good.items() if k != "model"},
        "no step": {k: v for k, v in good.items() if k != "step"},
        "no optimizer": {k: v for k, v in good.items() if k != "optimizer"},
        "step abc": {**good, "step": "abc"},
        "step nan": {**good, "step": float("nan")},
        "step None": {**good, "step": None},
        "step 1e12": {**good, "step": 10**12},
        "step 1e300": {**good, "step": 1e300},
        "model shape": {**good, "model": {**good["model"], first: torch.zeros(3)}},
        "model nan": {**good, "model": {**good["model"], first: good["model"][first] * np.nan}},
        "optimizer shape": {
            **good,
            "optimizer": {
                **good["optimizer"],
                "state": {0: {**good["optimizer"]["state"][0], "exp_avg": torch.zeros(2)}},
            },
        },
    }
    args = ("train-vocoder", ckpt, "-d", SAMPLES / "us_m", "-o", out, "--steps", "20",
            "--batch", "2", "--segment-frames", "8", "--speed", "1")  # fmt: skip
    for why, state in bad_states.items():
        torch.save(state, state_path)
        line = one_error(run_cli(*args))
        assert "cannot resume from this train-vocoder state" in line, why
        assert str(state_path) in line and "--overwrite" in line, why
    res = run_cli(*args, "--overwrite")  # starts over
    assert res.code == 0, res.err
    assert out.is_file() and not state_path.exists()


def test_the_recipe_is_bounded(ckpt, tmp_path):
    for flag, value in (("--batch", "100000000"), ("--steps", "1000000000000"),
                        ("--segment-frames", "10000000")):  # fmt: skip
        res = run_cli("train-vocoder", ckpt, "-d", SAMPLES / "us_m", "-o", tmp_path / "v.st",
                      flag, value)  # fmt: skip
        assert "must be an integer in [1, " in one_error(res)


# 12. absurd header rates; whole reads in blocks ------------------------------------------


def _one_hertz_wav(path: Path) -> Path:
    sf.write(path, np.zeros(4000, dtype=np.float32), 1000)
    data = bytearray(path.read_bytes())
    data[24:28] = (1).to_bytes(4, "little")  # the header's sample rate
    data[28:32] = (2).to_bytes(4, "little")  # and byte rate
    path.write_bytes(bytes(data))
    return path


def test_a_header_claiming_one_hertz_is_refused_in_one_line(ckpt, tmp_path):
    wav = _one_hertz_wav(tmp_path / "one.wav")
    with sf.SoundFile(wav) as fh:
        assert fh.samplerate == 1
    res = run_cli("encode", ckpt, wav, "--out", tmp_path / "o")
    assert res.code == 1 and "its header says 1 Hz, outside [1000" in res.err
    tok_dir = tmp_path / "t"
    good = sorted((SAMPLES / "us_m").glob("*.flac"))[0]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "one.wav").write_bytes(good.read_bytes())
    assert run_cli("encode", ckpt, tmp_path / "w", "--out", tok_dir, "-q").code == 0
    (tmp_path / "w" / "one.wav").write_bytes(wav.read_bytes())
    res = run_cli("eval", ckpt, tok_dir, "--audio", tmp_path / "w")
    assert res.code == 1 and "header says 1 Hz" in res.err
    res = run_cli("train-vocoder", ckpt, "-d", wav, "-o", tmp_path / "v.safetensors")
    assert "header says 1 Hz" in one_error(res)


def test_an_input_read_whole_is_read_in_blocks_with_the_same_samples(monkeypatch, tmp_path):
    from tokquant.audio.frontend import AudioSource
    from tokquant.audio.io import AudioReader
    from tokquant.runners import features
    from tokquant.sources import FileSource

    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 22050 * 3).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 22050, subtype="FLOAT")
    with AudioReader(tmp_path / "a.wav") as reader:
        source = AudioSource(reader, 16000, None)
        whole = source.read(0, source.num_samples).numpy()
    monkeypatch.setattr(features, "_BLOCK_SECONDS", 1)
    item = FileSource(key=Path("a"), file=tmp_path / "a.wav")
    assert np.array_equal(features.source_audio(item, 16000), whole)


# 13, 14. eval: short, silent-NaN and far too loud inputs fail alone ----------------------


def test_eval_scores_the_other_files_when_one_is_too_short_or_too_loud(ckpt, tmp_path):
    wav = tmp_path / "w"
    wav.mkdir()
    good = sorted((SAMPLES / "us_m").glob("*.flac"))[0]
    (wav / "good.flac").write_bytes(good.read_bytes())
    rng = np.random.default_rng(0)
    sf.write(wav / "short.wav", rng.uniform(-0.3, 0.3, 1024).astype(np.float32), 16000)
    sf.write(wav / "loud.wav", rng.uniform(-0.3, 0.3, 16000).astype(np.float32), 16000,
             subtype="FLOAT")  # fmt: skip
    assert run_cli("encode", ckpt, wav, "--out", tmp_path / "t", "-q").code == 0
    sf.write(wav / "loud.wav", rng.uniform(-1, 1, 16000).astype(np.float32) * 1e30, 16000,
             subtype="FLOAT")  # fmt: skip  # the reference, rewritten louder
    res = run_cli("eval", ckpt, tmp_path / "t", "--audio", wav, "--json")
    assert res.code == 1 and "Traceback" not in res.err
    report = json.loads(res.out)
    assert [row["key"] for row in report["rows"]] == ["good"]
    failures = " | ".join(report["failures"])
    assert "too short to score" in failures and "far outside [-1, 1]" in failures


# 15. Griffin-Lim of one and two frames -------------------------------------------------------


def test_griffin_lim_decodes_one_and_two_frames(tok, ckpt, tmp_path):
    from tokquant.engines.outputs import write_token_file

    front = tok.config.frontend
    for frames in (1, 2, 3):
        wave = tok.decode_audio(np.zeros((frames, 3), dtype=np.int64))
        assert wave.shape[0] == front.first_centre + (frames - 1) * front.hop_length
    with pytest.raises(ValueError, match="meta tensor"):
        tok.decode_audio(torch.zeros(3, 3, dtype=torch.long, device="meta"))
    folder = tmp_path / "t"
    for frames in (1, 2):
        write_token_file(tok, folder / f"f{frames}.tokens.safetensors",
                         np.zeros((frames, 3), dtype=np.int64), source=f"f{frames}")  # fmt: skip
    res = run_cli("decode", ckpt, folder, "--audio", "--out", tmp_path / "o", "-q")
    assert res.code == 0, res.err
    assert sf.info(tmp_path / "o" / "f1.wav").frames == front.first_centre
    assert sf.info(tmp_path / "o" / "f2.wav").frames == front.first_centre + front.hop_length


# 19. Ray Data and datasets.map cells --------------------------------------------------------


def test_ray_data_cells_with_bad_rates_are_value_errors_naming_the_row(ckpt):
    from tokquant.engines.ray import Tokenize

    fn = Tokenize(ckpt)
    wave = np.zeros(16000, dtype=np.float32)
    cells = np.empty(2, dtype=object)
    cells[0], cells[1] = wave, wave
    for batch, message in (
        ({"audio": cells, "sample_rate": np.array([16000.0, np.inf])}, "row 1: sample rate"),
        ({"audio": cells, "sample_rate": np.array([16000])}, "2 rows but 1 sample rates"),
        ({"audio": [{"array": wave}]}, "row 0: a decoded audio cell has no 'sampling_rate'"),
        ({"audio": [{"array": wave, "sampling_rate": 1}]}, r"row 0: sample rate 1 is outside"),
    ):
        with pytest.raises(ValueError, match=message):
            fn(batch)


# 20. smaller --------------------------------------------------------------------------------


def test_train_vocoder_on_all_bad_data_says_why(ckpt, tmp_path):
    (tmp_path / "a.wav").write_bytes(b"not audio at all")
    (tmp_path / "b.wav").write_bytes(b"")
    line = one_error(run_cli("train-vocoder", ckpt, "-d", tmp_path, "-o", tmp_path / "v.st"))
    assert "no usable audio" in line and "not readable audio" in line and "1 more" in line


def test_bigvgan_configs_with_a_key_twice_or_too_many_stages_are_refused(tmp_path):
    pytest.importorskip("bigvgan")
    from tests.test_pretrained_vocoders import BIGVGAN_24K
    from tokquant.decoders.pretrained.networks import load_pretrained

    folder = tmp_path / "b"
    folder.mkdir()
    text = json.dumps(BIGVGAN_24K)
    (folder / "config.json").write_text(text[:-1] + ', "num_mels": 80}')
    torch.save({"generator": {}}, folder / "bigvgan_generator.pt")
    with pytest.raises(FormatError, match="the key 'num_mels' twice"):
        load_pretrained(folder)
    config = {**BIGVGAN_24K, "upsample_rates": [1] * 14, "upsample_kernel_sizes": [1] * 14}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FormatError, match="upsample_rates has 14 stages, at most 13") as err:
        load_pretrained(folder)
    assert "[16384, 8192]" not in str(err.value)


def test_a_resumed_corpus_counts_the_frames_of_its_resumed_shards(ckpt, voices, tmp_path):
    out = tmp_path / "c"
    args = ("encode", ckpt, voices / "wav", "--out", out, "--shards", "--shard-size", "1",
            "--json")  # fmt: skip
    whole = json.loads(run_cli(*args).out)
    part = out / "manifest.rank00000-of-00001.json"
    record = json.loads(part.read_text())
    (out / record["shards"][1]["file"]).unlink()
    record["shards"] = record["shards"][:1]
    part.write_text(json.dumps(record))
    (out / "manifest.json").unlink()
    resumed = json.loads(run_cli(*args).out)
    assert resumed["shards_resumed"] == 1 and resumed["shards_written"] == 1
    assert resumed["files_encoded"] == whole["files_encoded"] == 2
    assert resumed["frames"] == whole["frames"] and resumed["tokens"] == whole["tokens"]


# 21. decode outputs of other settings --------------------------------------------------------


def test_decode_refuses_outputs_made_with_another_decoder_or_levels(tok, ckpt, tokens, tmp_path):
    out = tmp_path / "o"
    voc = small_vocoder(tok, tmp_path / "v.safetensors")
    assert run_cli("decode", ckpt, tokens, "--audio", "--out", out, "-q").code == 0
    before = (out / "spk1" / "x.wav").read_bytes()
    for extra in (("--vocoder", voc), ("--levels", "2"), ("--vocoder", voc, "--mel-match", "0")):
        line = one_error(run_cli("decode", ckpt, tokens, "--audio", "--out", out, *extra))
        assert "was decoded with other settings" in line and "--overwrite" in line
    assert (out / "spk1" / "x.wav").read_bytes() == before
    res = run_cli("decode", ckpt, tokens, "--audio", "--out", out, "--json")
    assert json.loads(res.out)["files_skipped"] == 2
    res = run_cli("decode", ckpt, tokens, "--audio", "--out", out, "--vocoder", voc,
                  "--overwrite", "--json")  # fmt: skip
    assert json.loads(res.out)["files_decoded"] == 2
    assert (out / "spk1" / "x.wav").read_bytes() != before
    res = run_cli("decode", ckpt, tokens, "--audio", "--out", out, "--vocoder", voc, "--json")
    assert json.loads(res.out)["files_skipped"] == 2


def test_mel_match_defaults_to_each_decoders_own(tok, tmp_path):
    from tokquant.decoders import open_decoder
    from tokquant.decoders.mel import MEL_MATCH
    from tokquant.decoders.pretrained.decoder import PretrainedDecoder
    from tokquant.jobs import DecodeJob, EvalJob

    assert DecodeJob.mel_match is None and EvalJob.mel_match is None
    trained = open_decoder(small_vocoder(tok, tmp_path / "v.safetensors"), tok)
    assert trained.mel_match == MEL_MATCH
    assert PretrainedDecoder.mel_match == 0.0  # Vocos/BigVGAN: their own output


# 22. datasets.map on the shapes datasets gives -------------------------------------------------


def test_tokenize_fn_reads_decoded_and_path_only_audio_columns(ckpt, voices, tokens):
    datasets = pytest.importorskip("datasets")
    from tokquant.formats.tokens import read_tokens
    from tokquant.integrations.hf import tokenize_fn

    files = [str(voices / "wav" / f"spk{i}" / "x.flac") for i in (1, 2)]
    expected = [read_tokens(tokens / f"spk{i}" / "x.tokens.safetensors").codes for i in (1, 2)]
    for decode in (True, False):
        ds = datasets.Dataset.from_dict({"audio": files})
        ds = ds.cast_column("audio", datasets.Audio(decode=decode))
        if decode:
            try:
                ds[0]["audio"]
            except (ImportError, RuntimeError) as exc:  # no torchcodec or FFmpeg here
                pytest.skip(f"datasets cannot decode audio here: {str(exc)[:80]}")
        out = ds.map(tokenize_fn(ckpt), batched=True, with_rank=True)
        for row, want in zip(out, expected, strict=True):
            assert np.array_equal(np.asarray(row["codes"]), want), decode


def test_the_readme_datasets_example_runs_as_printed(ckpt, voices, tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    import re

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(from datasets import load_dataset\n.*?)```", readme, re.S)
    assert block is not None
    (tmp_path / "model.safetensors").write_bytes(ckpt.read_bytes())
    (tmp_path / "wavs").mkdir()
    for i in (1, 2):
        src = voices / "wav" / f"spk{i}" / "x.flac"
        (tmp_path / "wavs" / f"s{i}.flac").write_bytes(src.read_bytes())
    done = subprocess.run([sys.executable, "-c", block.group(1)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_DATASETS_OFFLINE": "1",
                               "HF_HUB_OFFLINE": "1"})  # fmt: skip
    if "torchcodec" in done.stderr or "FFmpeg" in done.stderr:
        pytest.skip("datasets cannot decode audio here (torchcodec or FFmpeg missing)")
    assert done.returncode == 0, done.stderr[-2000:]
    frames, columns = map(int, done.stdout.split()[-2:])
    assert frames > 100 and columns == 3


# 23. Ctrl-C at any moment ---------------------------------------------------------------------


def test_ctrl_c_at_any_moment_is_one_line_and_130(ckpt, voices, tmp_path):
    from tokquant.errors import INTERRUPTED

    # from 0.5 s on: before that Python itself may still be starting (site, the first
    # imports), where no program's handler is installed yet
    for i, delay in enumerate((0.5, 0.9, 1.4)):
        proc = subprocess.Popen([sys.executable, "-m", "tokquant", "encode", str(ckpt),
                                 str(voices / "wav"), "--out", str(tmp_path / f"o{i}")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert "Traceback" not in err and "terminate called" not in err, err
        if proc.returncode == 130:
            assert err.strip().splitlines()[-1] == INTERRUPTED
        else:  # it had finished: its summary is whole
            assert proc.returncode == 0 and "encode" in out, (proc.returncode, err)


def test_torch_is_imported_while_ctrl_c_ends_the_process_at_once(monkeypatch):
    """The C++ abort came from a KeyboardInterrupt raised inside ``import torch``: the
    CLI imports torch first, under the handler that writes the line and exits."""
    import builtins

    from tokquant.cli import app

    seen, real_import = [], builtins.__import__

    def spy(name, *args, **kwargs):
        if name == "torch":
            seen.append(signal.getsignal(signal.SIGINT))
        return real_import(name, *args, **kwargs)

    def handler(signum, frame):  # stands in for tokquant.cli.entry.exit_interrupted
        raise AssertionError("not called here")

    monkeypatch.setattr(builtins, "__import__", spy)
    app._import_torch(["encode", "m.safetensors", "wavs/"], handler)
    assert seen == [handler] and signal.getsignal(signal.SIGINT) is not handler
    seen.clear()
    app._import_torch(["encode", "--help"], handler)  # help stays torch-free
    app._import_torch(["verify", "c/"], handler)
    assert seen == []


# 24. the checkpoint id names what makes codes --------------------------------------------------


def test_the_checkpoint_id_ignores_the_summary_and_the_thread_count(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    config = tmp_path / "c.yaml"
    config.write_text("frontend: {kind: logmel, n_mels: 40}\n"
                      "quantizer: {family: bsq, code_dim: 8}\n"
                      "train: {steps: 4, batch_frames: 256}\n")  # fmt: skip
    ids, tensors = {}, {}
    for threads in ("1", "2"):
        out = tmp_path / f"m{threads}.safetensors"
        res = run_cli("train", "-c", config, "-d", SAMPLES / "us_m", "-o", out,
                      "--threads", threads, "--json")  # fmt: skip
        assert res.code == 0, res.err
        ids[threads] = json.loads(res.out)["checkpoint_id"]
        assert ids[threads] == content_id(out) == tokquant.load(out).checkpoint_id
        with safe_open(str(out), "pt") as fh:
            tensors[threads] = {k: fh.get_tensor(k) for k in fh.keys()}
    same = all(torch.equal(tensors["1"][k], tensors["2"][k]) for k in tensors["1"])
    assert (ids["1"] == ids["2"]) == same
    # the summary (whose floats differ with the thread count) is not part of the id
    with safe_open(str(tmp_path / "m1.safetensors"), "pt") as fh:
        meta = fh.metadata()
    summary = json.loads(meta["summary"])
    summary["val_mse"] = summary.get("val_mse", 0.0) + 1e-9
    save_file(tensors["1"], str(tmp_path / "edited.safetensors"),
              metadata={**meta, "summary": json.dumps(summary)})  # fmt: skip
    assert tokquant.load(tmp_path / "edited.safetensors").checkpoint_id == ids["1"]


# 25. threads ------------------------------------------------------------------------------------


def test_threads_follow_affinity_slurm_and_the_flag(ckpt, voices, tmp_path):
    probe = ("import os; os.sched_setaffinity(0, {0}); from tokquant.devices import usable_cpus;"
             " print(usable_cpus())")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "1", done.stderr
    env = {**os.environ, "SLURM_CPUS_PER_TASK": "1"}
    probe = "from tokquant.devices import usable_cpus; print(usable_cpus())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "1", done.stderr
    before = torch.get_num_threads()
    try:
        res = run_cli("encode", ckpt, voices / "wav", "--out", tmp_path / "o", "--threads", "1")
        assert res.code == 0 and torch.get_num_threads() == 1
        assert "greater than or equal to 1" in one_error(
            run_cli("encode", ckpt, voices / "wav", "--out", tmp_path / "o", "--threads", "0")
        )
    finally:
        torch.set_num_threads(before)


# 26. progress in a log ------------------------------------------------------------------------


def test_progress_prints_lines_when_stderr_is_a_log(ckpt, voices, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKQUANT_PROGRESS_SECONDS", "0")
    res = run_cli("encode", ckpt, voices / "wav", "--out", tmp_path / "o")
    assert res.code == 0
    lines = [line for line in res.err.splitlines() if line.startswith("encode: ")]
    assert lines[-1].startswith("encode: 2/2 (100%), 0m00s"), res.err
    monkeypatch.setenv("TOKQUANT_PROGRESS_SECONDS", "3600")  # work done sooner: no line
    res = run_cli("encode", ckpt, voices / "wav", "--out", tmp_path / "o2")
    assert res.code == 0 and "encode: " not in res.err


# 27. what a new user met ------------------------------------------------------------------------


def test_the_readme_quantizer_example_runs_as_printed():
    import re

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(import torch\nfrom tokquant import BSQ, FSQ, LFQ, RVQ\n.*?)```",
                      readme, re.S)  # fmt: skip
    assert block is not None
    namespace: dict = {}
    exec(block.group(1), namespace)  # noqa: S102 - the README's own example
    assert namespace["codes"].shape[-1] == 1 and namespace["coarse"].shape == (100, 128)


def test_info_vocoders_help_and_mistyped_folders(tok, ckpt, tokens, tmp_path, monkeypatch):
    voc = small_vocoder(tok, tmp_path / "v.safetensors")
    data = json.loads(run_cli("info", voc, "--json").out)
    assert data["kind"] == "vocoder" and data["checkpoint_id"] == tok.checkpoint_id
    assert data["parameters"] > 0 and data["config"]["hop"] == 160
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    line = one_error(run_cli("decode", ckpt, tokens, "--audio", "--out", "o",
                             "--vocoder", "runs/vocos-mistyped"))  # fmt: skip
    assert "runs/vocos-mistyped: no such file or folder" in line
    assert "FSQ" in run_cli("--help").err + run_cli("--help").out
    for command in ("train", "train-vocoder", "encode", "eval", "stats", "merge"):
        text = run_cli(command, "--help").out
        assert "list[" not in text and "more_data" not in text, command
    wave = tok.decode_audio(np.zeros((10, 3), dtype=np.int64), vocoder=voc)
    front = tok.config.frontend
    assert wave.shape[0] == front.first_centre + 10 * front.hop_length
    assert "`win_length / 2 + T * hop` samples" in (ROOT / "README.md").read_text()


def test_quiet_prints_no_table(ckpt, voices, tmp_path):
    res = run_cli("encode", ckpt, voices / "wav", "--out", tmp_path / "o", "-q")
    assert res.code == 0 and res.out == "" and "┃" not in res.err
