"""Corpora where they live (issue 25): each source is made with its own library where one
exists (datasets, webdataset) or as plain text (Kaldi, fairseq, key<TAB>path lists) from
the bundled corpus, encoded with --shards, and compared key by key with the same audio
encoded as plain files: identical codes. Bad input fails alone (exit 1) or stops the run
before anything is written (exit 2)."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SAMPLES, run_cli
from tests.test_hostile_round3 import one_error
from tokquant.formats.corpus import Corpus, Manifest
from tokquant.sources.segments import sample_at

FILES = sorted(SAMPLES.rglob("*.flac"))  # keys: gb_f/utt00, ...


def _key(path: Path) -> str:
    return path.relative_to(SAMPLES).with_suffix("").as_posix()


@pytest.fixture(scope="module")
def ckpt(logmel_rvq) -> Path:
    return logmel_rvq


@pytest.fixture(scope="module")
def reference(ckpt, tmp_path_factory) -> Corpus:
    """The bundled corpus encoded as plain files."""
    out = tmp_path_factory.mktemp("ref") / "corpus"
    assert run_cli("encode", ckpt, SAMPLES, "--out", out, "--shards", "-q").code == 0
    return Corpus(out)


def _encode(ckpt: Path, out: Path, *inputs, extra=()):
    return run_cli("encode", ckpt, *inputs, "--out", out, "--shards", "--shard-size", "7", *extra)


def _same_codes(corpus: Path, reference: Corpus, rename=lambda k: k, count=None) -> None:
    """Every key of ``corpus`` (renamed) has ``reference``'s codes; with no ``count``,
    the two hold the same keys."""
    got = Corpus(corpus)
    keys = sorted(rename(k) for k in got.keys())
    if count is None:
        assert keys == sorted(reference.keys())
    else:
        assert len(keys) == count and set(keys) <= set(reference.keys())
    for key in got.keys():
        assert np.array_equal(got[key], reference[rename(key)]), key


# ---------------------------------------------------------------- one per source


def test_webdataset_tars_written_by_webdataset(tmp_path, ckpt, reference):
    import webdataset as wds

    for i, part in enumerate((FILES[:13], FILES[13:])):
        with wds.TarWriter(str(tmp_path / f"shards-{i:06d}.tar")) as sink:
            for f in part:
                sink.write({"__key__": _key(f), "flac": f.read_bytes(), "txt": "hello"})
    res = _encode(ckpt, tmp_path / "c", str(tmp_path / "shards-{000000..000001}.tar"))
    assert res.code == 0, res.err
    _same_codes(tmp_path / "c", reference)
    sources = {u.source.rsplit(":", 1)[0] for u in Corpus(tmp_path / "c").utterances()}
    assert sources == {str(tmp_path / "shards-000000.tar"), str(tmp_path / "shards-000001.tar")}


def _dataset(rows: list[Path], with_id: bool = True):
    from datasets import Audio, Dataset

    data = {"audio": [{"bytes": f.read_bytes(), "path": f.name} for f in rows]}
    if with_id:
        data["id"] = [_key(f) for f in rows]
    return Dataset.from_dict(data).cast_column("audio", Audio(decode=False))


def test_parquet_files_and_saved_datasets_written_by_datasets(tmp_path, ckpt, reference):
    dataset = _dataset(FILES)
    (tmp_path / "pq").mkdir()
    dataset.select(range(20)).to_parquet(tmp_path / "pq" / "train-0.parquet", batch_size=6)
    dataset.select(range(20, len(FILES))).to_parquet(tmp_path / "pq" / "train-1.parquet")
    dataset.save_to_disk(tmp_path / "saved")
    for name in ("pq", "saved"):
        res = _encode(ckpt, tmp_path / f"c-{name}", tmp_path / name)
        assert res.code == 0, res.err
        _same_codes(tmp_path / f"c-{name}", reference)


def test_parquet_keys_default_to_file_names_and_a_named_column(tmp_path, ckpt, reference):
    rows = FILES[:6]  # one speaker: file names are unique
    _dataset(rows, with_id=False).to_parquet(tmp_path / "one.parquet")
    assert _encode(ckpt, tmp_path / "c", tmp_path / "one.parquet").code == 0
    _same_codes(tmp_path / "c", reference, lambda k: f"{rows[0].parent.name}/{k}", count=6)
    renamed = _dataset(rows).rename_column("audio", "speech").rename_column("id", "utt")
    renamed.to_parquet(tmp_path / "two.parquet")
    res = _encode(ckpt, tmp_path / "d", tmp_path / "two.parquet",
                  extra=["--audio-column", "speech", "--key-column", "utt"])  # fmt: skip
    assert res.code == 0, res.err
    _same_codes(tmp_path / "d", reference, count=6)


def test_kaldi_wav_scp_keys_are_utterance_ids(tmp_path, ckpt, reference):
    lines = [f"{_key(f).replace('/', '-')} {f}" for f in FILES]
    (tmp_path / "wav.scp").write_text("\n".join(lines) + "\n")
    assert _encode(ckpt, tmp_path / "c", tmp_path / "wav.scp").code == 0
    _same_codes(tmp_path / "c", reference, rename=lambda k: k.replace("-", "/", 1))


def test_kaldi_segments_equal_the_cut_audio_encoded_as_files(tmp_path, ckpt):
    """Three utterances of one speaker joined into one 44.1 kHz recording, cut at decimal
    times that fall between samples; each segment's codes equal its cut, written as a file
    with the documented rounding rule, encoded as a file."""
    rate = 44100
    parts = [sf.read(f, dtype="float32")[0] for f in FILES[:3]]
    joined = np.concatenate([np.interp(np.arange(int(p.size * rate / 16000)) * 16000 / rate,
                                       np.arange(p.size), p) for p in parts])  # fmt: skip
    sf.write(tmp_path / "long.wav", joined, rate, subtype="FLOAT")
    (tmp_path / "kaldi").mkdir()
    (tmp_path / "kaldi" / "wav.scp").write_text(f"rec1 {tmp_path / 'long.wav'}\n")
    cuts = {
        "seg-a": ("0.01234", "1.5"),
        "seg-b": ("1.49999", "3.00001"),
        "seg-c": ("2.5", f"{joined.size / rate + 0.2:.5f}"),
    }  # the end runs past: clipped
    (tmp_path / "kaldi" / "segments").write_text(
        "".join(f"{k} rec1 {s} {e}\n" for k, (s, e) in cuts.items()))  # fmt: skip
    assert _encode(ckpt, tmp_path / "c", tmp_path / "kaldi" / "wav.scp").code == 0
    files = tmp_path / "cut"
    files.mkdir()
    for key, (start, end) in cuts.items():
        first = sample_at(Fraction(start), rate)
        last = min(sample_at(Fraction(end), rate), joined.size)
        sf.write(files / f"{key}.wav", joined[first:last], rate, subtype="FLOAT")
    assert _encode(ckpt, tmp_path / "ref", files).code == 0
    _same_codes(tmp_path / "c", Corpus(tmp_path / "ref"))


def test_fairseq_tsv_keys_and_order_line_up_with_km_export(tmp_path, ckpt, reference):
    order = FILES[::-1]  # not sorted: the manifest's order must survive
    lines = [str(SAMPLES)] + [f"{f.relative_to(SAMPLES)}\t{sf.info(f).frames}" for f in order]
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    assert _encode(ckpt, tmp_path / "c", tmp_path / "train.tsv").code == 0
    _same_codes(tmp_path / "c", reference)
    res = run_cli("export", tmp_path / "c", "--to", "km", "--layout", "interleave", "--out",
                  tmp_path / "km", "--split", "train")  # fmt: skip
    assert res.code == 0, res.err
    keys = [f.relative_to(SAMPLES).with_suffix("").as_posix() for f in order]
    lines = (tmp_path / "km" / "train.km").read_text().splitlines()
    ids = (tmp_path / "km" / "train.keys").read_text().splitlines()
    assert ids == keys and len(lines) == len(keys)


def test_key_tab_path_lists_and_lists_from_several_folders(tmp_path, ckpt, reference):
    (tmp_path / "mine.tsv").write_text("".join(f"u{i}\t{f}\n" for i, f in enumerate(FILES)))
    assert _encode(ckpt, tmp_path / "c", tmp_path / "mine.tsv").code == 0
    _same_codes(tmp_path / "c", reference, rename=lambda k: _key(FILES[int(k[1:])]))
    # a plain list whose entries share file names across folders: no collision
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "all.txt").write_text("".join(f"{f}\n" for f in FILES))
    assert _encode(ckpt, tmp_path / "d", tmp_path / "lists" / "all.txt").code == 0
    _same_codes(tmp_path / "d", reference)


# ---------------------------------------------------------------- ranks


@pytest.mark.parametrize("kind", ["webdataset", "parquet"])
def test_two_ranks_read_disjoint_units_and_merge_complete(tmp_path, ckpt, reference, kind):
    if kind == "webdataset":
        import webdataset as wds

        for i in range(4):
            with wds.TarWriter(str(tmp_path / f"s-{i}.tar")) as sink:
                for f in FILES[i::4]:
                    sink.write({"__key__": _key(f), "flac": f.read_bytes()})
        spec = str(tmp_path / "s-{0..3}.tar")
    else:
        _dataset(FILES).to_parquet(tmp_path / "all.parquet", batch_size=5)
        spec = str(tmp_path / "all.parquet")
    units = []
    for rank in (0, 1):
        res = _encode(ckpt, tmp_path / "c", spec,
                      extra=["--num-shards", "2", "--shard-index", str(rank)])  # fmt: skip
        assert res.code == 0, res.err
        part = Manifest.read(next((tmp_path / "c").glob(f"manifest.rank{rank:05d}-*.json")))
        sources = [e.source for shard in part.shards for e in shard.entries]
        units.append({s.rsplit(":", 1)[0] if kind == "webdataset" else
                      int(s.rsplit("#row", 1)[1]) // 5 for s in sources})  # fmt: skip
    assert units[0] and units[1] and not units[0] & units[1]
    assert run_cli("merge", tmp_path / "c").code == 0
    _same_codes(tmp_path / "c", reference)


# ---------------------------------------------------------------- bad input


def test_bad_entries_fail_alone_and_the_rest_are_encoded(tmp_path, ckpt, reference):
    import webdataset as wds

    good = FILES[:3]
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "wav.scp").write_text(
        f"a {good[0]}\nb {tmp_path / 'missing.flac'}\nc {good[1]}\nup {good[2]}\n"
    )
    (tmp_path / "k" / "segments").write_text(
        "s1 a 0 1.0\ns2 c 0.5 99\ns3 a 1.0 2.0\ns1 c 0 1\n../x a 0 1\n")  # fmt: skip
    res = _encode(ckpt, tmp_path / "c", tmp_path / "k" / "wav.scp")
    assert res.code == 1
    assert Corpus(tmp_path / "c").keys() == ["s1", "s3"]
    for words in ("outside its recording", "duplicate key 's1'", "not a safe relative path"):
        assert words in res.err, words
    with wds.TarWriter(str(tmp_path / "t.tar")) as sink:
        sink.write({"__key__": "ok", "flac": good[0].read_bytes()})
        sink.write({"__key__": "broken", "flac": b"not audio at all" * 10})
        sink.write({"__key__": "text", "txt": "no audio"})
    res = _encode(ckpt, tmp_path / "w", tmp_path / "t.tar")
    assert res.code == 1 and Corpus(tmp_path / "w").keys() == ["ok"]
    assert "t.tar:broken.flac: not readable audio" in res.err and "no flac or wav" in res.err


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("wav.scp", "a sox in.wav -t wav - |\n", "wav.scp:1: a is a command"),
        ("wav.scp", "onlyone\n", "wav.scp:1: expected 'utterance-id path'"),
        ("train.tsv", "/data\nx.flac\t12\nbroken line\n", "train.tsv:3: expected"),
        ("list.tsv", "a\tx.flac\nb\n", "list.tsv:2: expected 'key<TAB>path'"),
        ("bad.tar", "this is no tar", "bad.tar: not an uncompressed tar file"),
        ("bad.parquet", "this is no parquet", "bad.parquet: not a readable Parquet file"),
    ],
)
def test_unreadable_manifests_stop_before_anything_is_written(tmp_path, ckpt, name, text, words):
    (tmp_path / name).write_text(text)
    res = _encode(ckpt, tmp_path / "c", tmp_path / name)
    assert res.code == 2, res.err
    assert words in one_error(res) and not (tmp_path / "c").exists()


def test_segments_lines_are_checked(tmp_path, ckpt):
    (tmp_path / "wav.scp").write_text(f"a {FILES[0]}\n")
    for line, words in (("s a 1.0 0.5\n", "ends (0.5) before it starts"),
                        ("s a x 1\n", "must be seconds"), ("s b 0 1\n", "recording b is not"),
                        ("s a nan 1\n", "must be seconds")):  # fmt: skip
        (tmp_path / "segments").write_text(line)
        res = _encode(ckpt, tmp_path / "c", tmp_path / "wav.scp")
        assert res.code == 2 and "segments:1:" in one_error(res) and words in one_error(res)


# ---------------------------------------------------------------- lhotse, feats.scp, other jobs


def _cuts(tmp_path: Path):
    """Cuts of the bundled corpus with offsets and durations, one on channel 1 of a
    stereo recording."""
    from lhotse import CutSet, Recording

    stereo = tmp_path / "stereo.wav"
    a, rate = sf.read(FILES[0], dtype="float32")
    b, _ = sf.read(FILES[1], dtype="float32")
    n = min(a.size, b.size)
    sf.write(stereo, np.stack([a[:n], 0.5 * b[:n]], axis=1), rate, subtype="FLOAT")
    cuts = []
    for i, f in enumerate(FILES[:5]):
        rec = Recording.from_file(f, recording_id=f"rec{i}")
        cuts.append(rec.to_cut().truncate(offset=0.1 + 0.05 * i, duration=1.2))
    rec = Recording.from_file(stereo, recording_id="stereo")
    cut = rec.to_cut()
    cuts.append(type(cut)(id="stereo-ch1", start=0.3, duration=1.5, channel=1, recording=rec))
    return CutSet.from_cuts(cuts)


def test_lhotse_cut_manifests_and_shar_equal_the_cut_audio_as_files(tmp_path, ckpt):
    from lhotse import CutSet

    cuts = _cuts(tmp_path)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    (tmp_path / "shar").mkdir()
    cuts.to_shar(tmp_path / "shar", fields={"recording": "flac"}, shard_size=4)
    for name, spec, loaded in (
        ("manifest", tmp_path / "cuts.jsonl.gz", cuts),
        ("shar", tmp_path / "shar", CutSet.from_shar(in_dir=tmp_path / "shar")),
    ):
        files = tmp_path / f"ref-{name}"
        files.mkdir()
        for cut in loaded:  # lhotse's own samples of each cut, written as files
            sf.write(files / f"{cut.id}.wav", cut.load_audio().T, cut.sampling_rate,
                     subtype="FLOAT")  # fmt: skip
        assert _encode(ckpt, tmp_path / f"ref-c-{name}", files).code == 0
        res = _encode(ckpt, tmp_path / f"c-{name}", spec)
        assert res.code == 0, res.err
        _same_codes(tmp_path / f"c-{name}", Corpus(tmp_path / f"ref-c-{name}"))


def test_kaldi_feats_scp_on_a_feature_checkpoint(tmp_path, trained, corpus):
    import kaldiio

    files = sorted(corpus.rglob("*.npy"))
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'feats.ark'},{tmp_path / 'feats.scp'}") as out:
        for f in files:
            out(f.stem, np.load(f))
    assert run_cli("encode", trained, tmp_path / "feats.scp", "--out", tmp_path / "c",
                   "--shards").code == 0  # fmt: skip
    assert run_cli("encode", trained, corpus, "--out", tmp_path / "ref", "--shards").code == 0
    ref = Corpus(tmp_path / "ref")
    _same_codes(tmp_path / "c", ref, rename=lambda k: next(
        r for r in ref.keys() if Path(r).name == k), count=len(files))  # fmt: skip
    res = run_cli("encode", trained, tmp_path / "wav.scp", "--out", tmp_path / "x")
    assert res.code == 2  # no such file: a path error, not a crash
    (tmp_path / "wav.scp").write_text(f"a {FILES[0]}\n")
    res = run_cli("encode", trained, tmp_path / "wav.scp", "--out", tmp_path / "x")
    assert res.code == 2 and "holds audio; this checkpoint reads feature inputs" in one_error(res)


def test_train_audit_and_stats_read_sources_too(tmp_path, ckpt):
    import webdataset as wds

    with wds.TarWriter(str(tmp_path / "t.tar")) as sink:
        for f in FILES[:8]:
            sink.write({"__key__": f.stem + f.parent.name, "flac": f.read_bytes()})
    (tmp_path / "c.yaml").write_text("frontend: {kind: logmel, n_mels: 40}\n"
                                     "quantizer: {family: bsq, code_dim: 8}\n"
                                     "train: {steps: 3, batch_frames: 256}\n")  # fmt: skip
    res = run_cli("train", "-c", tmp_path / "c.yaml", "-d", tmp_path / "t.tar", "-o",
                  tmp_path / "m.safetensors", "--max-frames", "500", "--json")  # fmt: skip
    assert res.code == 0, res.err
    res = run_cli("audit", ckpt, tmp_path / "t.tar", "--json")
    assert res.code == 0, res.err
    audit = json.loads(res.out)
    assert len(audit["inputs"]) == 8 and audit["overall"]["batched"] == 1.0
    assert audit["overall"]["chunked"] == 1.0
    assert run_cli("encode", ckpt, tmp_path / "t.tar", "--out", tmp_path / "tok").code == 0
    res = run_cli("stats", ckpt, tmp_path / "tok", "--features", tmp_path / "t.tar", "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["reconstruction"]["frames"] == json.loads(res.out)["frames"]


def test_sigkill_then_resume_over_a_webdataset_gives_the_same_bytes(tmp_path, ckpt):
    import signal
    import subprocess
    import sys
    import time

    import webdataset as wds

    from tests.test_corpus import tree_bytes

    with wds.TarWriter(str(tmp_path / "t.tar")) as sink:
        for f in FILES:
            sink.write({"__key__": _key(f), "flac": f.read_bytes()})

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "tokquant", "encode", str(ckpt), str(tmp_path / "t.tar"),
                "--out", str(out), "--shards", "--shard-size", "3", "--workers", "1", "-q"]  # fmt: skip

    subprocess.run(command(tmp_path / "ref"), check=True, capture_output=True)
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = out / "manifest.rank00000-of-00001.json"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if part.exists() and len(Manifest.read(part).shards) >= 2:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()  # killed mid-run
    subprocess.run(command(out), check=True, capture_output=True)
    assert tree_bytes(out) == tree_bytes(tmp_path / "ref")


def test_lhotse_recordings_split_by_channel_like_files(tmp_path, ckpt):
    from lhotse import Recording, RecordingSet

    a, rate = sf.read(FILES[0], dtype="float32")
    b, _ = sf.read(FILES[1], dtype="float32")
    n = min(a.size, b.size)
    sf.write(tmp_path / "stereo.wav", np.stack([a[:n], 0.5 * b[:n]], axis=1), rate)
    recordings = RecordingSet.from_recordings(
        [Recording.from_file(tmp_path / "stereo.wav", recording_id="stereo")])  # fmt: skip
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    for mode in ("mix", "split"):
        flags = ["--channels", mode]
        assert _encode(ckpt, tmp_path / f"l-{mode}", tmp_path / "recordings.jsonl.gz",
                       extra=flags).code == 0  # fmt: skip
        assert _encode(ckpt, tmp_path / f"f-{mode}", tmp_path / "stereo.wav", extra=flags).code == 0
        _same_codes(tmp_path / f"l-{mode}", Corpus(tmp_path / f"f-{mode}"))
    assert sorted(Corpus(tmp_path / "l-split").keys()) == ["stereo.ch0", "stereo.ch1"]


def test_parquet_audio_as_paths_and_a_chosen_webdataset_member(tmp_path, ckpt, reference):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    rows = FILES[:5]
    (tmp_path / "data").symlink_to(SAMPLES)  # relative paths: from the Parquet file's folder
    table = pa.table({"id": [_key(f) for f in rows],
                      "audio": [f"data/{f.relative_to(SAMPLES)}" for f in rows]})  # fmt: skip
    pq.write_table(table, tmp_path / "paths.parquet")
    assert _encode(ckpt, tmp_path / "p", tmp_path / "paths.parquet").code == 0
    _same_codes(tmp_path / "p", reference, count=5)
    with wds.TarWriter(str(tmp_path / "two.tar")) as sink:
        for f in rows:
            wave, rate = sf.read(f, dtype="float32")
            noise = np.random.default_rng(0).standard_normal(wave.size).astype(np.float32)
            buffer = io.BytesIO()
            sf.write(buffer, 0.1 * noise, rate, format="WAV")
            sink.write({"__key__": _key(f), "flac": f.read_bytes(), "wav": buffer.getvalue()})
    assert _encode(ckpt, tmp_path / "w", tmp_path / "two.tar",
                   extra=["--audio-member", "flac"]).code == 0  # fmt: skip
    _same_codes(tmp_path / "w", reference, count=5)
    assert _encode(ckpt, tmp_path / "n", tmp_path / "two.tar",
                   extra=["--audio-member", "wav"]).code == 0  # fmt: skip
    noise = Corpus(tmp_path / "n")
    assert not all(np.array_equal(noise[k], reference[k]) for k in noise.keys())


def test_mixed_rates_formats_and_odd_names_through_the_loader_threads(tmp_path, ckpt):
    """A tar and a Parquet file of wav/flac/ogg at 8, 22.05 and 44.1 kHz, mono and stereo,
    under names with spaces, accents, '#', '%' and a leading dash, read by 3 loader
    threads: the same codes as the same bytes as files."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import webdataset as wds

    names = ["a b/é ü", "#hash/100%", "-dash/x,y", "tab/ñandú", "z/日本語"]
    formats = [("WAV", "PCM_16", 8000, 1), ("FLAC", "PCM_24", 22050, 2), ("OGG", "VORBIS", 44100, 1),
               ("WAV", "FLOAT", 44100, 2), ("FLAC", "PCM_16", 16000, 1)]  # fmt: skip
    folder = tmp_path / "files"
    blobs = []
    for i, (name, (fmt, subtype, rate, channels)) in enumerate(zip(names, formats, strict=True)):
        wave, source_rate = sf.read(FILES[i], dtype="float32")
        t = np.arange(int(wave.size * rate / source_rate)) * source_rate / rate
        mono = np.interp(t, np.arange(wave.size), wave).astype(np.float32)
        data = mono if channels == 1 else np.stack([mono, 0.7 * mono[::-1]], axis=1)
        buffer = io.BytesIO()
        sf.write(buffer, data, rate, format=fmt, subtype=subtype)
        extension = fmt.lower()
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.{extension}").write_bytes(buffer.getvalue())
        blobs.append((name, extension, buffer.getvalue()))
    with wds.TarWriter(str(tmp_path / "mixed.tar")) as sink:
        for name, extension, blob in blobs:
            sink.write({"__key__": name, extension: blob})
    audio = pa.array([{"bytes": b, "path": f"{n}.{e}"} for n, e, b in blobs],
                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))  # fmt: skip
    pq.write_table(pa.table({"id": [n for n, _, _ in blobs], "audio": audio}),
                   tmp_path / "mixed.parquet", row_group_size=2)  # fmt: skip
    flags = ["--workers", "3", "--batch-frames", "700"]
    assert _encode(ckpt, tmp_path / "ref", folder, extra=flags).code == 0
    reference = Corpus(tmp_path / "ref")
    assert sorted(reference.keys()) == sorted(names)
    for spec in ("mixed.tar", "mixed.parquet"):
        res = _encode(ckpt, tmp_path / f"out-{spec}", tmp_path / spec, extra=flags)
        assert res.code == 0, res.err
        _same_codes(tmp_path / f"out-{spec}", reference)


def test_webdataset_keys_split_at_the_first_dot_and_fields_match_their_last_part(tmp_path):
    from tokquant.sources.webdataset import expand_braces, read_webdataset, sample_key

    assert sample_key("dir/utt-1.seg.flac") == ("dir/utt-1", "seg.flac")
    assert sample_key("dir/.hidden") is None and sample_key("noext") is None
    assert expand_braces("s-{08..11}.tar") == ["s-08.tar", "s-09.tar", "s-10.tar", "s-11.tar"]
    assert expand_braces("{a,b}-{0..1}.tar") == ["a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"]
    import webdataset as wds

    with wds.TarWriter(str(tmp_path / "t.tar")) as sink:
        sink.write({"__key__": "k", "seg.flac": FILES[0].read_bytes(), "json": b"{}"})
    (source,) = read_webdataset(str(tmp_path / "t.tar"))
    assert (str(source.key), source.member) == ("k", "k.seg.flac")
    assert source.fetch() == FILES[0].read_bytes()
