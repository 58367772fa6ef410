"""Round 4 of the hostile-input sweep (issue 29): the new sources, locks, temp files and
the API. Each numbered defect has a test that failed before its fix; the numbers are the
issue's. What a manifest must never make tokquant do (run a command, fetch a URL, write
outside ``--out``, follow a link it did not make) is tested here too."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import tokquant
from tests.conftest import SAMPLES, run_cli, write_config
from tests.test_hostile import error_lines
from tests.test_hostile_round3 import one_error
from tokquant.formats.corpus import Corpus, Manifest
from tokquant.storage import atomic

FILES = sorted(SAMPLES.rglob("*.flac"))
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(logmel_rvq) -> Path:
    return logmel_rvq


def _encode(ckpt: Path, out: Path, *inputs, extra=()):
    return run_cli("encode", ckpt, *inputs, "--out", out, "--shards", "--shard-size", "4", *extra)


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _failures(out: Path) -> dict[str, str]:
    return dict(Manifest.read(out / "manifest.json").failures)


# 1. feats.scp (and every Kaldi file) never runs a command -------------------------------


@pytest.mark.parametrize("entry", ["touch${IFS}MARK|", "|touch${IFS}MARK"])
@pytest.mark.parametrize("command", ["encode", "train", "audit"])
def test_a_feats_scp_pipe_is_refused_not_run(tmp_path, trained, entry, command):
    pytest.importorskip("kaldiio")
    mark = tmp_path / "ran"
    (tmp_path / "feats.scp").write_text(f"u1 {entry.replace('MARK', str(mark))}\n")
    args = {"encode": ["encode", trained, tmp_path / "feats.scp", "-o", tmp_path / "o"],
            "train": ["train", "-c", write_config(tmp_path / "c.yaml"), "-d",
                      tmp_path / "feats.scp", "-o", tmp_path / "m.safetensors"],
            "audit": ["audit", trained, tmp_path / "feats.scp"]}[command]  # fmt: skip
    res = run_cli(*args)
    assert "is a command" in one_error(res) and "feats.scp:1" in res.err
    assert not mark.exists()


# 2. lhotse command and url sources are refused by name, per recording ------------------


def test_lhotse_command_and_url_sources_fail_alone_and_never_run(tmp_path, ckpt):
    lhotse = pytest.importorskip("lhotse")
    mark = tmp_path / "ran"
    good = lhotse.Recording.from_file(FILES[0], recording_id="good")
    info = sf.info(FILES[1])
    shell = lhotse.Recording(
        id="shell", sampling_rate=info.samplerate, num_samples=info.frames,
        duration=info.frames / info.samplerate,
        sources=[lhotse.audio.AudioSource(type="command", channels=[0],
                                          source=f"touch {mark}; cat {FILES[1]}")],
    )  # fmt: skip
    url = lhotse.Recording(
        id="web", sampling_rate=info.samplerate, num_samples=info.frames,
        duration=info.frames / info.samplerate,
        sources=[lhotse.audio.AudioSource(type="url", channels=[0],
                                          source="http://127.0.0.1:9/x.flac")],
    )  # fmt: skip
    lhotse.RecordingSet.from_recordings([good, shell, url]).to_file(tmp_path / "recs.jsonl.gz")
    cuts = lhotse.CutSet.from_manifests(recordings=lhotse.RecordingSet.from_recordings([shell]))
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    res = _encode(ckpt, tmp_path / "c", tmp_path / "recs.jsonl.gz")
    assert res.code == 1 and "Traceback" not in res.err
    assert list(Corpus(tmp_path / "c").keys()) == ["good"]
    failures = _failures(tmp_path / "c")
    assert "'command' audio source" in failures["shell"] and "'url'" in failures["web"]
    res = _encode(ckpt, tmp_path / "d", tmp_path / "cuts.jsonl.gz")
    assert res.code == 1 and "'command' audio source" in res.err
    assert not mark.exists()


# 3, 25. lock files: a planted link or FIFO is refused, never written through -------------


@pytest.mark.parametrize("kind", ["symlink", "fifo", "devnull"])
def test_a_planted_lock_file_is_refused_in_one_line(tmp_path, trained, corpus, kind):
    out = tmp_path / "c"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = out / ".tokquant-rank00000.lock"
    {"symlink": lambda: lock.symlink_to(victim), "fifo": lambda: os.mkfifo(lock),
     "devnull": lambda: lock.symlink_to("/dev/null")}[kind]()  # fmt: skip
    res = run_cli("encode", trained, corpus, "--out", out, "--shards")
    line = one_error(res)
    assert ".tokquant-rank00000.lock" in line and "not a regular file" in line
    assert victim.read_text() == "precious"
    assert not (out / "manifest.json").exists()


def test_a_planted_export_lock_link_is_refused(tmp_path, trained, corpus):
    assert run_cli("encode", trained, corpus, "--out", tmp_path / "c", "--shards").code == 0
    out = tmp_path / "e"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / ".tokquant-export.lock").symlink_to(victim)
    res = run_cli("export", tmp_path / "c", "--to", "km", "--out", out)
    assert "not a regular file" in one_error(res)
    assert victim.read_text() == "precious"


# 4. temp files: created new, never through a planted link --------------------------------


def test_planted_temp_file_links_are_stepped_over(tmp_path, trained, corpus):
    out = tmp_path / "c"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o600)
    host = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"
    start = next(atomic._counter)
    for n in range(start, start + 300):  # every temp name this run can choose
        (out / f".tq-{host}-{os.getpid()}-{n}.tmp").symlink_to(victim)
    res = run_cli("encode", trained, corpus, "--out", out, "--shards", "--shard-size", "2")
    assert res.code == 0, res.err
    assert victim.read_text() == "precious" and victim.stat().st_mode & 0o777 == 0o600
    assert Corpus(out).keys() and not error_lines(res)


def test_an_output_path_that_is_a_link_or_fifo_fails_alone(tmp_path, trained, corpus):
    out = tmp_path / "t"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "a.tokens.safetensors").symlink_to(victim)
    os.mkfifo(out / "b.tokens.safetensors")
    res = run_cli("encode", trained, corpus, "--out", out)
    assert res.code == 1 and "Traceback" not in res.err
    lines = error_lines(res)
    assert len(lines) == 2 and all("not a regular file" in line for line in lines)
    assert victim.read_text() == "precious"
    assert (out / "sub" / "c.tokens.safetensors").is_file()


def test_a_symlinked_folder_under_out_is_not_written_through(tmp_path, trained, corpus):
    out = tmp_path / "t"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    res = run_cli("encode", trained, corpus, "--out", out)
    assert res.code == 1 and "symbolic link" in res.err and "Traceback" not in res.err
    assert not list(elsewhere.rglob("*"))
    assert (out / "a.tokens.safetensors").is_file()


# 5, 30. tar members that cannot be read exactly fail alone; concatenated tars are whole -


def _sparse_wav(path: Path) -> bytes:
    """A wav whose long silent middle is a hole in the file (what ``tar --sparse``
    stores sparse)."""
    rate = 16000
    wave = np.zeros(rate * 4, np.int16)
    wave[:rate] = (np.sin(np.arange(rate) * 0.05) * 9000).astype(np.int16)
    wave[-rate:] = wave[:rate]
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()
    hole_start, hole_end = 44 + rate * 2 + 8192 & ~4095, len(data) - rate * 2 - 8192 & ~4095
    with open(path, "wb") as fh:
        fh.write(data[:hole_start])
        fh.seek(hole_end)
        fh.write(data[hole_end:])
    return data


def test_sparse_hardlink_and_symlink_members_fail_alone(tmp_path, ckpt):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.flac").write_bytes(FILES[0].read_bytes())
    (src / "b.flac").write_bytes(FILES[1].read_bytes())
    os.link(src / "b.flac", src / "c.flac")
    (src / "d.flac").symlink_to(src / "a.flac")
    _sparse_wav(src / "s.wav")
    if subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", tmp_path / "t.tar", "-C", src,
                       "a.flac", "b.flac", "c.flac", "d.flac", "s.wav"]).returncode:  # fmt: skip
        pytest.skip("GNU tar cannot write this archive here")
    with tarfile.open(tmp_path / "t.tar") as tar:
        if not tar.getmember("s.wav").issparse():
            pytest.skip("this filesystem keeps no holes: no sparse member")
    res = _encode(ckpt, tmp_path / "c", tmp_path / "t.tar")
    assert res.code == 1 and "Traceback" not in res.err
    assert sorted(Corpus(tmp_path / "c").keys()) == ["a", "b"]
    failures = _failures(tmp_path / "c")
    assert "sparse member" in failures["s"] and "hard link" in failures["c"]
    assert "symbolic link member" in failures["d"]


def test_a_concatenated_tar_is_read_to_its_end(tmp_path, ckpt):
    first = _tar(tmp_path / "1.tar", {"a.flac": FILES[0].read_bytes()})
    second = _tar(tmp_path / "2.tar", {"b.flac": FILES[1].read_bytes()})
    (tmp_path / "both.tar").write_bytes(first.read_bytes() + second.read_bytes())
    assert _encode(ckpt, tmp_path / "c", tmp_path / "both.tar").code == 0
    assert _encode(ckpt, tmp_path / "r", FILES[0], FILES[1]).code == 0
    got, ref = Corpus(tmp_path / "c"), Corpus(tmp_path / "r")
    assert sorted(got.keys()) == ["a", "b"]
    assert np.array_equal(got["a"], ref["utt00"]) and np.array_equal(got["b"], ref["utt01"])


# 6. --audio-member matches the whole field name -----------------------------------------


def test_audio_member_matches_the_whole_field(tmp_path, ckpt):
    _tar(tmp_path / "t.tar", {"k.seg.flac": FILES[3].read_bytes(), "k.flac": FILES[0].read_bytes()})
    assert (
        _encode(ckpt, tmp_path / "c", tmp_path / "t.tar", extra=["--audio-member", "flac"]).code
        == 0
    )
    assert _encode(ckpt, tmp_path / "r", FILES[0]).code == 0
    assert np.array_equal(Corpus(tmp_path / "c")["k"], Corpus(tmp_path / "r")["utt00"])


# 7. merge refuses parts of different runs ------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "words"),
    [(["--levels", "2"], ["--levels", "3"], "levels 2 vs 3"),
     (["--channels", "mix"], ["--channels", "split"], "channels 'mix' vs 'split'"),
     ([], ["--beam", "2"], "beam None vs 2"),
     ([], ["OTHER"], "other inputs")],
)  # fmt: skip
def test_merge_refuses_rank_parts_of_different_runs(tmp_path, ckpt, first, second, words):
    out = tmp_path / "c"
    for rank, extra in ((0, first), (1, second)):
        inputs = [SAMPLES / "gb_f"] if "OTHER" not in extra else [SAMPLES / "us_m"]
        flags = [e for e in extra if e != "OTHER"]
        res = run_cli("encode", ckpt, *inputs, "--out", out, "--shards", "--num-shards", "2",
                      "--shard-index", rank, *flags)  # fmt: skip
        assert res.code == 0, res.err
    line = one_error(run_cli("merge", out))
    assert "another run" in line and words in line
    assert not (out / "manifest.json").exists()


# 8, 27. a file rewritten at the same path is never read from an older version -----------


def test_a_parquet_file_rewritten_between_jobs_is_read_anew(tmp_path, ckpt):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    def table(files):
        return pa.table({"id": [f"u{i}" for i in range(len(files))],
                         "audio": [{"bytes": f.read_bytes(), "path": f.name} for f in files]})  # fmt: skip

    path = tmp_path / "d.parquet"
    pq.write_table(table(FILES[:3]), path)
    assert _encode(ckpt, tmp_path / "c1", path).code == 0
    pq.write_table(table(FILES[3:6]), path)  # same path, same row groups, other audio
    assert _encode(ckpt, tmp_path / "c2", path).code == 0
    assert _encode(ckpt, tmp_path / "r", *FILES[3:6]).code == 0
    got, ref = Corpus(tmp_path / "c2"), Corpus(tmp_path / "r")
    for i, f in enumerate(FILES[3:6]):
        assert np.array_equal(got[f"u{i}"], ref[f.stem])


def test_a_tar_replaced_after_indexing_is_refused(tmp_path):
    from tokquant.errors import InputError
    from tokquant.sources.webdataset import read_webdataset

    tar = _tar(
        tmp_path / "t.tar", {"a.flac": FILES[0].read_bytes(), "b.flac": FILES[1].read_bytes()}
    )
    sources = read_webdataset(str(tar))
    _tar(tmp_path / "new.tar", {"b.flac": FILES[1].read_bytes(), "a.flac": FILES[0].read_bytes()})
    os.replace(tmp_path / "new.tar", tar)
    with pytest.raises(InputError, match="changed since it was indexed"):
        with sources[0].open_audio():
            pass


# 9. a Shar folder missing a cut manifest is refused --------------------------------------


def test_a_shar_folder_missing_a_cut_manifest_is_refused(tmp_path, ckpt):
    lhotse = pytest.importorskip("lhotse")
    recs = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(f, recording_id=f"r{i}") for i, f in enumerate(FILES[:4])
    )
    cuts = lhotse.CutSet.from_manifests(recordings=recs)
    (tmp_path / "shar").mkdir()
    cuts.to_shar(tmp_path / "shar", fields={"recording": "flac"}, shard_size=2)
    (tmp_path / "shar" / "cuts.000001.jsonl.gz").unlink()
    line = one_error(_encode(ckpt, tmp_path / "c", tmp_path / "shar"))
    assert "no cuts.000001.jsonl.gz" in line
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


# 10. a FIFO (or device, folder, loop) named in any manifest is refused, never opened ----


_FIFO_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from tests.conftest import run_cli
    ckpt, feat_ckpt, tmp = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    results = {}
    for name in sorted(os.listdir(tmp / "cases")):
        case = tmp / "cases" / name
        inputs = [case / f for f in json.loads((case / "inputs.json").read_text())]
        which = feat_ckpt if (case / "features").exists() else ckpt
        res = run_cli("encode", which, *inputs, "--out", tmp / "out" / name, "--shards")
        results[name] = [res.code, res.err]
    print(json.dumps(results))
""")


def test_a_fifo_named_in_any_manifest_fails_in_one_line(tmp_path, ckpt, trained):
    pytest.importorskip("pyarrow")
    pytest.importorskip("lhotse")
    pytest.importorskip("kaldiio")
    import lhotse
    import pyarrow as pa
    import pyarrow.parquet as pq

    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    ark = tmp_path / "pipe.ark"
    os.mkfifo(ark)
    loop = tmp_path / "loop.flac"
    loop.symlink_to(loop)
    cases = {
        "list": ("l.txt", f"{fifo}\n"),
        "wavscp": ("wav.scp", f"u1 {fifo}\nu2 /dev/zero\nu3 {tmp_path}\nu4 {loop}\n"),
        "tsv": ("m.tsv", f"{tmp_path}\npipe.flac\t100\n"),
        "keyed": ("k.txt", f"u1\t{fifo}\n"),
        "featsscp": ("feats.scp", f"u1 {ark}:0\n"),
    }
    for name, (file, text) in cases.items():
        (tmp_path / "cases" / name).mkdir(parents=True)
        (tmp_path / "cases" / name / file).write_text(text)
        (tmp_path / "cases" / name / "inputs.json").write_text(json.dumps([file]))
    (tmp_path / "cases" / "featsscp" / "features").touch()
    (tmp_path / "cases" / "parquet").mkdir()
    pq.write_table(pa.table({"id": ["u1"], "audio": [str(fifo)]}),
                   tmp_path / "cases" / "parquet" / "p.parquet")  # fmt: skip
    (tmp_path / "cases" / "parquet" / "inputs.json").write_text('["p.parquet"]')
    (tmp_path / "cases" / "lhotse").mkdir()
    info = sf.info(FILES[0])
    rec = lhotse.Recording(id="u1", sampling_rate=info.samplerate, num_samples=info.frames,
                           duration=info.frames / info.samplerate,
                           sources=[lhotse.audio.AudioSource("file", [0], str(fifo))])  # fmt: skip
    lhotse.RecordingSet.from_recordings([rec]).to_file(tmp_path / "cases" / "lhotse" / "r.jsonl")
    (tmp_path / "cases" / "lhotse" / "inputs.json").write_text('["r.jsonl"]')
    done = subprocess.run([sys.executable, "-c", _FIFO_SCRIPT, ckpt, trained, tmp_path],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted([*cases, "parquet", "lhotse"])
    for name, (code, err) in results.items():
        # a plain path list stops the run on a bad entry (exit 2); manifests fail it alone
        assert code == (2 if name == "list" else 1) and "Traceback" not in err, (name, err)
        assert "FIFO" in err, (name, err)
    wavscp = results["wavscp"][1]
    assert "/dev/zero: a device, not a regular file" in wavscp and "a folder" in wavscp
    assert "loop.flac: a symbolic link loop" in wavscp


# 11, 15, 28. segment times in Kaldi's grammar, bounded ---------------------------------


@pytest.mark.parametrize(
    ("times", "words"),
    [("0 1e100000000", "must be seconds"), ("0 1e400", "must be seconds"),
     ("1_0 2", "must be seconds"), ("1/3 2", "must be seconds"),
     ("\u0661 2", "must be seconds"), ("0.5 0.5", "is empty")],
)  # fmt: skip
def test_segment_times_follow_kaldis_grammar(tmp_path, ckpt, times, words):
    (tmp_path / "wav.scp").write_text(f"r1 {FILES[0]}\n")
    (tmp_path / "segments").write_text(f"s1 r1 {times}\n")
    line = one_error(_encode(ckpt, tmp_path / "c", tmp_path / "wav.scp"))
    assert words in line and "segments:1" in line and len(line) < 300


def test_seconds_takes_decimals_only():
    from tokquant.sources.segments import seconds

    assert seconds("1.5") == seconds("15e-1") == seconds(".15e1")
    for text in ("1_0", "1/3", "\u0661", "nan", "inf", "1e100", "-1", "1.2.3", "", " "):
        with pytest.raises(ValueError):
            seconds(text)


# 12. brace patterns are counted before they are expanded ---------------------------------


def test_a_huge_brace_pattern_is_refused_before_expansion(tmp_path, ckpt):
    line = one_error(_encode(ckpt, tmp_path / "c", str(tmp_path / "s-{000..0099999999}.tar")))
    assert "more than 100,000 tar files" in line


# 13. odd sample rates: memory bounded whatever the rate ----------------------------------


def test_the_direct_resampler_is_torchaudios_filter():
    import torchaudio

    from tokquant.audio.resample import Resampling, direct_sinc

    for orig, new in ((4001, 1600), (1600, 4001), (44100, 16000), (997, 1000)):
        r = Resampling.between(orig, new)
        x = torch.randn(orig * 2, dtype=torch.float64)
        want = torchaudio.functional.resample(x, orig, new)  # float64: its exact filter
        got = direct_sinc(x, 0, 0, r.output_length(x.numel()), r)
        assert got.shape == want.shape
        assert float((got.double() - want).abs().max()) < 1e-6
        a, b = r.input_range(333, 1777, x.numel())  # a range from its own samples alone
        assert torch.equal(direct_sinc(x[a:b], a, 333, 1777, r), got[333:1777])
    assert Resampling.between(16001, 16000).direct and not Resampling.between(44100, 16000).direct


_RATES_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, soundfile as sf
    import tokquant
    from tests.conftest import run_cli
    ckpt, tmp = sys.argv[1], sys.argv[2]
    tok = tokquant.load(ckpt)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {}
    for rate in (16001, 32003, 999983):
        t = np.arange(int(rate * 1.2)) / rate
        wave = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
        sf.write(f"{tmp}/r{rate}.wav", wave, rate, subtype="FLOAT")
        api = tok.encode_audio(wave, rate).numpy().tolist()
        res = run_cli("encode", ckpt, f"{tmp}/r{rate}.wav", "--out", f"{tmp}/o", "-q")
        resampled = -(-wave.size * 16000 // rate)  # torchaudio's output length
        out[rate] = [res.code, res.err, api, 1 + (resampled - 400) // 160]
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"grew_kib": grew, "runs": out}))
""")


def test_coprime_rates_encode_with_bounded_memory(tmp_path, ckpt):
    from tokquant.formats.tokens import read_tokens

    done = subprocess.run([sys.executable, "-c", _RATES_SCRIPT, ckpt, tmp_path],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["grew_kib"] < 400 * 1024  # torchaudio's kernels: 4.7 GB, then 64 GB
    for rate, (code, err, api, frames) in result["runs"].items():
        assert code == 0, err
        codes = read_tokens(tmp_path / "o" / f"r{rate}.tokens.safetensors").codes
        assert codes.tolist() == api and len(api) == frames


# 14. a member whose header claims 40 GB is never allocated -------------------------------


def test_a_member_claiming_40_gb_fails_alone(tmp_path, ckpt):
    info = tarfile.TarInfo("huge.flac")
    info.size = 40 * 10**9
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    good = _tar(tmp_path / "g.tar", {"ok.flac": FILES[0].read_bytes()})
    with tarfile.open(good) as archive:
        archive.getmembers()
        end = archive.offset  # where its end-of-archive blocks start
    (tmp_path / "t.tar").write_bytes(good.read_bytes()[:end] + header
                                     + FILES[1].read_bytes()[:4096] + b"\0" * 1024)  # fmt: skip
    res = _encode(ckpt, tmp_path / "c", tmp_path / "t.tar")
    assert res.code == 1 and "Traceback" not in res.err
    assert list(Corpus(tmp_path / "c").keys()) == ["ok"]
    assert "ends inside this member" in _failures(tmp_path / "c")["huge"]


# 16, 21. Parquet cells and keys of the wrong kind fail their row alone --------------------


def test_parquet_rows_with_bad_bytes_or_keys_fail_alone(tmp_path, ckpt):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    audio = [f.read_bytes() for f in FILES[:6]]
    ids = pa.array([b"u0", None, b"\xff\xfe", "caf\u00e9".encode(), b"u4", b"u5"], pa.binary())
    pq.write_table(pa.table({"id": ids, "audio": audio}), tmp_path / "a.parquet")
    floats = pa.table({"id": [1.5, float("nan")], "audio": audio[:2]})
    pq.write_table(floats, tmp_path / "b.parquet")
    text = pa.StructArray.from_arrays([pa.array(["not bytes"]), pa.array(["x.flac"])],
                                      names=["bytes", "path"])  # fmt: skip
    pq.write_table(pa.table({"id": ["s"], "audio": text}), tmp_path / "c.parquet")
    res = _encode(ckpt, tmp_path / "o", tmp_path / "a.parquet")
    assert res.code == 1 and "Traceback" not in res.err
    assert sorted(Corpus(tmp_path / "o").keys()) == ["caf\u00e9", "u0", "u4", "u5"]
    assert "null" in res.err and "not a text key" in res.err and "b'" not in res.err
    res = _encode(ckpt, tmp_path / "p", tmp_path / "b.parquet")
    assert res.code == 1 and res.err.count("holds a float") == 2
    res = _encode(ckpt, tmp_path / "q", tmp_path / "c.parquet")
    assert res.code == 1 and "bytes field holds str" in res.err and "Traceback" not in res.err


def test_key_column_audio_does_not_print_audio_bytes(tmp_path, ckpt):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"audio": [FILES[0].read_bytes()]}), tmp_path / "a.parquet")
    res = _encode(ckpt, tmp_path / "o", tmp_path / "a.parquet", extra=["--key-column", "audio"])
    assert res.code == 1 and len(res.err) < 600 and "fLaC" not in res.err


# 17. a list with a non-UTF-8 byte later on ----------------------------------------------


def test_a_list_with_a_bad_byte_after_its_first_line_is_one_line(tmp_path, ckpt):
    (tmp_path / "l.txt").write_bytes(f"{FILES[0]}\n".encode() + b"\xff\xfe.flac\n")
    line = one_error(_encode(ckpt, tmp_path / "c", tmp_path / "l.txt"))
    assert "l.txt:2: not UTF-8" in line


# 18. sources with no entries are refused by every command -------------------------------


def _empty_sources(tmp_path: Path) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    lhotse = pytest.importorskip("lhotse")
    (tmp_path / "wav.scp").write_text("\n")
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "audio": pa.array([], pa.binary())}),
                   tmp_path / "z.parquet")  # fmt: skip
    lhotse.CutSet.from_cuts([]).to_file(tmp_path / "none.jsonl.gz")
    return {"wav.scp": tmp_path / "wav.scp", "parquet": tmp_path / "z.parquet",
            "cutset": tmp_path / "none.jsonl.gz"}  # fmt: skip


@pytest.mark.parametrize("command", ["encode", "train", "audit"])
def test_sources_with_no_entries_are_refused(tmp_path, ckpt, trained, command):
    pytest.importorskip("pyarrow")
    pytest.importorskip("kaldiio")
    config = tmp_path / "c.yaml"
    config.write_text("frontend: {kind: logmel, n_mels: 40}\n"
                      "quantizer: {family: rvq, num_levels: 2, num_embeddings: 8}\n")  # fmt: skip
    sources = _empty_sources(tmp_path)
    (tmp_path / "feats.scp").write_text("")
    said = {"wav.scp": "lists no recordings", "parquet": "holds no rows",
            "cutset": "holds no cuts", "feats.scp": "lists no matrices"}  # fmt: skip
    for name, path in [*sources.items(), ("feats.scp", tmp_path / "feats.scp")]:
        which = trained if name == "feats.scp" else ckpt
        out = tmp_path / f"out-{name}"
        args = {"encode": ["encode", which, path, "-o", out, "--shards"],
                "train": ["train", "-c", config, "-d", path, "-o", out / "m.safetensors"],
                "audit": ["audit", which, path]}[command]  # fmt: skip
        if command == "train" and name == "feats.scp":
            continue  # a feature config would be needed; encode and audit cover feats.scp
        line = one_error(run_cli(*args))
        assert said[name] in line, (name, line)
        assert not out.exists() or not list(out.iterdir()), name


# 19. user text prints literally: no Rich markup, no emoji codes --------------------------


def test_emoji_codes_and_markup_in_names_print_as_written(tmp_path, trained):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / ":warning:[bold].npy").write_bytes(b"")
    res = run_cli("encode", trained, tmp_path / "in", "--out", tmp_path / "o")
    assert res.code == 1 and ":warning:[bold].npy" in res.err and "\u26a0" not in res.err


# 20. a member twice in one tar fails its key -------------------------------------------


def test_a_member_twice_in_a_tar_fails_its_key(tmp_path, ckpt):
    _tar(tmp_path / "t.tar", {"a.flac": FILES[0].read_bytes(), "b.flac": FILES[1].read_bytes(),
                              "b.FLAC": FILES[2].read_bytes(), "A.flac": FILES[3].read_bytes()})  # fmt: skip
    with tarfile.open(tmp_path / "t.tar", "a") as tar:  # the same name again, appended
        info = tarfile.TarInfo("a.flac")
        info.size = len(FILES[4].read_bytes())
        tar.addfile(info, io.BytesIO(FILES[4].read_bytes()))
    res = _encode(ckpt, tmp_path / "c", tmp_path / "t.tar")
    assert res.code == 1
    assert sorted(Corpus(tmp_path / "c").keys()) == ["A"]
    failures = _failures(tmp_path / "c")
    assert "appears twice" in failures["a"] and "appears twice" in failures["b"]


# 22. a saved dataset is the files state.json lists --------------------------------------


def test_a_saved_dataset_reads_the_files_state_json_lists(tmp_path, ckpt):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({
        "id": [f"u{i}" for i in range(6)],
        "audio": [{"bytes": f.read_bytes(), "path": f.name} for f in FILES[:6]],
    }).cast_column("audio", datasets.Audio(decode=False))  # fmt: skip
    data.save_to_disk(tmp_path / "saved")
    (arrow,) = (tmp_path / "saved").glob("*.arrow")
    (tmp_path / "saved" / "cache-0123.arrow").write_bytes(arrow.read_bytes())  # filter()'s cache
    res = _encode(ckpt, tmp_path / "c", tmp_path / "saved")
    assert res.code == 0, res.err
    assert sorted(Corpus(tmp_path / "c").keys()) == [f"u{i}" for i in range(6)]


# 23. Shar cut ids may hold dots -----------------------------------------------------------


def test_shar_cut_ids_with_dots_are_read(tmp_path, ckpt):
    lhotse = pytest.importorskip("lhotse")
    recs = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(f, recording_id=f"spk.u{i}") for i, f in enumerate(FILES[:3])
    )
    (tmp_path / "shar").mkdir()
    cuts = lhotse.CutSet.from_manifests(recordings=recs)
    cuts.to_shar(tmp_path / "shar", fields={"recording": "flac"}, shard_size=2)
    ids = [cut.id for cut in cuts]  # spk.u0-0, ...: dots before lhotse's own suffix
    assert all("." in i for i in ids)
    assert _encode(ckpt, tmp_path / "c", tmp_path / "shar").code == 0
    assert _encode(ckpt, tmp_path / "r", *FILES[:3]).code == 0
    got, ref = Corpus(tmp_path / "c"), Corpus(tmp_path / "r")
    assert list(got.keys()) == ids
    for cut_id, f in zip(ids, FILES[:3], strict=True):
        assert np.array_equal(got[cut_id], ref[f.stem])


# 24. one key whose output cannot exist fails alone with a short line ---------------------


def test_an_output_path_over_path_max_fails_alone(tmp_path, ckpt):
    deep = "/".join(["d" * 200] * 22)  # 4.4 KB: every part is a legal name, the whole is not
    (tmp_path / "k.txt").write_text(f"{deep}/x\t{FILES[0]}\nok\t{FILES[1]}\n")
    res = run_cli("encode", ckpt, tmp_path / "k.txt", "--out", tmp_path / "o")
    lines = error_lines(res)
    assert res.code == 1 and len(lines) == 1 and len(lines[0]) < 400
    assert "over the system's limit" in lines[0]
    assert (tmp_path / "o" / "ok.tokens.safetensors").is_file()


def test_keys_k_and_k_npy_slash_x_decode_apart(tmp_path, trained):
    x = np.random.default_rng(0).standard_normal((30, 12)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    (tmp_path / "k.txt").write_text(f"k\t{tmp_path / 'a.npy'}\nk.npy/x\t{tmp_path / 'a.npy'}\n")
    assert (
        run_cli("encode", trained, tmp_path / "k.txt", "-o", tmp_path / "c", "--shards").code == 0
    )
    res = run_cli("decode", trained, tmp_path / "c", "-o", tmp_path / "d")
    lines = error_lines(res)
    assert res.code == 1 and len(lines) == 1 and len(lines[0]) < 400
    assert (tmp_path / "d" / "k.npy").is_file()


# 26. SLURM_ARRAY_TASK_MIN that is no number ------------------------------------------------


def test_a_slurm_task_min_that_is_no_number_is_one_line(tmp_path, trained, corpus, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "x")
    line = one_error(run_cli("encode", trained, corpus, "--out", tmp_path / "o", "--shards"))
    assert "SLURM_ARRAY_TASK_MIN is not an integer: 'x'" in line


# 28. manifest text as Kaldi and fairseq write it ------------------------------------------


def test_manifest_text_bom_comments_and_unicode_breaks(tmp_path, ckpt):
    odd = tmp_path / "a\u2028b\u0085c\u00a0d.flac"
    odd.write_bytes(FILES[0].read_bytes())
    (tmp_path / "wav.scp").write_bytes(b"\xef\xbb\xbf" + f"u1 {odd}\nu2 {FILES[1]}\n".encode())
    assert _encode(ckpt, tmp_path / "c", tmp_path / "wav.scp").code == 0
    assert sorted(Corpus(tmp_path / "c").keys()) == ["u1", "u2"]
    (tmp_path / "k.tsv").write_text(f"# my list\nv1\t{FILES[2]}\n")
    res = _encode(ckpt, tmp_path / "d", tmp_path / "k.tsv")
    assert res.code == 0, res.err
    assert list(Corpus(tmp_path / "d").keys()) == ["v1"]


# 29, 33. the API stays inside its ValueError contract --------------------------------------


def test_api_arguments_outside_the_contract_raise_value_error(ckpt):
    tok = tokquant.load(ckpt)
    wave = sf.read(FILES[0], dtype="float32")[0]
    for channel in (True, 1.0, "left"):
        with pytest.raises(ValueError, match="channel must be"):
            tok.encode_audio(wave, 16000, channel=channel)
    with pytest.raises(ValueError, match="codes are empty"):
        tok.decode_audio(torch.zeros(0, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="meta tensor"):
        tok.encode_audio(torch.empty(16000, device="meta"), 16000)
    with pytest.raises(ValueError, match="to_dense"):
        tok.encode_audio(torch.zeros(2, 16000).to_sparse(), 16000)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            tokquant.load(ckpt, device=torch.device("cuda"))


def test_soundfile_layout_and_batches_are_never_mixed_up(ckpt):
    tok = tokquant.load(ckpt)
    stereo, rate = sf.read(FILES[0], dtype="float32", always_2d=True)  # [N, 1]
    stereo = np.concatenate([stereo, stereo[::-1]], axis=1)  # [N, 2], as soundfile reads it
    assert torch.equal(tok.encode_audio(stereo, rate), tok.encode_audio(stereo.T, rate))
    clips = [sf.read(f, dtype="float32", frames=16000)[0] for f in FILES[:4]]
    stacked = torch.from_numpy(np.stack(clips))  # [4, N]: default_collate's batch
    with pytest.raises(ValueError, match=r"pass a list \(list\(wave\)\) or batched=True"):
        tok.encode_audio(stacked, 16000)
    batch = tok.encode_audio(stacked, 16000, batched=True)
    assert all(
        torch.equal(a, b) for a, b in zip(batch, tok.encode_audio(clips, 16000), strict=True)
    )
    mixed = tok.encode_audio(stacked, 16000, channel="mix")
    assert torch.equal(mixed, tok.encode_audio(stacked.mean(0), 16000))


# one line each: what a manifest names that is no file, tars of the wrong kind, options ---


def test_tars_of_the_wrong_kind_are_one_line(tmp_path, ckpt):
    (tmp_path / "d.tar").mkdir()
    os.mkfifo(tmp_path / "f.tar")
    (tmp_path / "z.tar.gz").write_bytes(b"\x1f\x8b")
    assert "a folder with no .tar files" in one_error(
        _encode(ckpt, tmp_path / "a", tmp_path / "d.tar")
    )
    assert "FIFO" in one_error(_encode(ckpt, tmp_path / "b", tmp_path / "f.tar"))
    assert "compressed tar" in one_error(_encode(ckpt, tmp_path / "c", tmp_path / "z.tar.gz"))
    _tar(tmp_path / "ok.tar", {"a.flac": FILES[0].read_bytes()})
    line = one_error(
        _encode(ckpt, tmp_path / "e", tmp_path / "ok.tar", extra=["--audio-member", "."])
    )
    assert "must name a field" in line


def test_a_dataset_dict_folder_names_its_splits(tmp_path, ckpt):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({"id": ["a"], "audio": [FILES[0].read_bytes()]})
    datasets.DatasetDict({"train": data, "test": data}).save_to_disk(tmp_path / "dd")
    line = one_error(_encode(ckpt, tmp_path / "c", tmp_path / "dd"))
    assert "DatasetDict" in line and "train/" in line and "test/" in line


def test_parquet_files_of_one_name_in_two_folders_keep_their_rows_apart(tmp_path, ckpt):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    for lang, files in (("en", FILES[:2]), ("fr", FILES[2:4])):
        (tmp_path / "d" / lang / "train").mkdir(parents=True)
        pq.write_table(pa.table({"audio": [f.read_bytes() for f in files]}),
                       tmp_path / "d" / lang / "train" / "0000.parquet")  # fmt: skip
    assert _encode(ckpt, tmp_path / "c", tmp_path / "d").code == 0
    assert sorted(Corpus(tmp_path / "c").keys()) == [
        "en/train/0000/000000", "en/train/0000/000001",
        "fr/train/0000/000000", "fr/train/0000/000001"]  # fmt: skip
