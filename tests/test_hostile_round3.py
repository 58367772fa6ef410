"""Round 3 of the hostile-input sweep (issue 23): each defect as a test that failed before
its fix. Concurrency with real processes is in ``test_concurrency.py``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import run_cli, write_config
from tests.corpora import random_utterances, write_corpus
from tests.test_hostile import error_lines, no_leftovers
from tokquant.formats import corpus as corpus_format
from tokquant.formats._safetensors import write_safetensors

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CARDS = (64, 16)


def one_error(res, code: int = 2) -> str:
    """The run's one error line (exit ``code``, no traceback)."""
    lines = error_lines(res)
    assert res.code == code and len(lines) == 1, (res.code, res.err)
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "c", random_utterances(9, CARDS, seed=1), CARDS, shard_size=3)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` unwritable, for root too (``chattr +i``), else by its mode bits."""
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    if immutable and subprocess.run(["chattr", "+i", folder]).returncode != 0:
        immutable = False
    if not immutable:
        if os.geteuid() == 0:
            pytest.skip("root without chattr: no way to make a folder read-only")
        folder.chmod(0o555)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", folder], check=True)
        else:
            folder.chmod(0o755)


# 1. export --overwrite never deletes what no export wrote ---------------------------------


def test_overwrite_into_a_folder_without_an_export_deletes_nothing(tmp_path, small_corpus):
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "parts").mkdir()
    (out / "README.md").write_text("my notes")
    (out / "data" / "old.parquet").write_bytes(b"precious")
    (out / "backup.tar").write_bytes(b"tar")
    (out / "parts" / "p.km").write_text("1 2 3")
    before = tree(out)
    res = run_cli("export", small_corpus, "--to", "parquet", "--out", out, "--overwrite")
    assert "holds no tokquant export" in one_error(res)
    assert tree(out) == before


def test_overwrite_of_an_export_keeps_the_users_own_files(tmp_path, small_corpus):
    out = tmp_path / "exp"
    assert run_cli("export", small_corpus, "--to", "webdataset", "--out", out).code == 0
    (out / "notes.txt").write_text("mine")
    (out / "train-extra.tar").write_bytes(b"mine too")  # matches the old pattern
    res = run_cli("export", small_corpus, "--to", "km", "--layout", "interleave", "--out", out,
                  "--overwrite")  # fmt: skip
    assert res.code == 0, res.err
    names = sorted(p.name for p in out.iterdir())
    assert "notes.txt" in names and "train-extra.tar" in names
    assert not [n for n in names if n.startswith("train-0")]  # the old export's tars are gone
    assert (out / "train.km").is_file() and not (out / "parts").exists()


# 2. merge refuses rank manifests of different world sizes ---------------------------------


def test_merge_refuses_mixed_world_sizes(tmp_path, trained, corpus):
    root = tmp_path / "c"
    for rank, world in ((1, 2), (2, 3)):
        res = run_cli("encode", trained, corpus, "--out", root, "--shards", "--num-shards",
                      world, "--shard-index", rank)  # fmt: skip
        assert res.code == 0, res.err
    res = run_cli("merge", root)
    assert "different world sizes (2, 3)" in one_error(res)
    assert not (root / "manifest.json").exists()


def test_a_run_of_another_world_size_does_not_overwrite_a_ranks_shards(tmp_path, trained, corpus):
    root = tmp_path / "c"
    assert run_cli("encode", trained, corpus, "--out", root, "--shards").code == 0
    before = tree(root)
    res = run_cli("encode", trained, corpus, "--out", root, "--shards", "--num-shards", 2,
                  "--shard-index", 0)  # fmt: skip
    assert "holds files of another run of rank 0" in one_error(res)
    assert tree(root) == before
    assert run_cli("verify", root).code == 0


# 4. loud audio: finite samples, non-finite features ---------------------------------------


def test_loud_audio_fails_alone_and_train_says_why(tmp_path, audio_ckpt):
    data = tmp_path / "in"
    data.mkdir()
    t = np.arange(16000) / 16000
    quiet = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(data / "ok.wav", quiet, 16000, subtype="FLOAT")
    sf.write(data / "loud.wav", quiet * 1e30, 16000, subtype="FLOAT")
    res = run_cli("encode", audio_ckpt, data, "--out", tmp_path / "o")
    line = one_error(res, code=1)
    assert "loud.wav: the front end gave NaN or Inf features" in line and "peak 3e+29" in line
    assert (tmp_path / "o" / "ok.tokens.safetensors").is_file()
    config = tmp_path / "c.yaml"
    config.write_text("frontend: {kind: logmel, n_mels: 20}\nquantizer: {family: rvq, "
                      "num_levels: 1, num_embeddings: 4}\nprojection: {kind: none}\n"
                      "train: {steps: 2, kmeans_iters: 1}\n")  # fmt: skip
    res = run_cli("train", "-c", config, "-d", data, "-o", tmp_path / "m.safetensors")
    assert "loud.wav: the front end gave NaN or Inf features" in one_error(res)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.fixture(scope="module")
def audio_ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    t = np.arange(32000) / 16000
    for i, f in enumerate((180, 260, 340)):
        sf.write(root / f"t{i}.wav", 0.2 * np.sin(2 * np.pi * f * t), 16000)
    config = root / "c.yaml"
    config.write_text("frontend: {kind: logmel, n_mels: 20}\nquantizer: {family: rvq, "
                      "num_levels: 2, num_embeddings: 8}\nprojection: {kind: none}\n"
                      "train: {steps: 3, batch_frames: 128, kmeans_iters: 2}\n")  # fmt: skip
    res = run_cli("train", "-c", config, "-d", root, "-o", root / "m.safetensors")
    assert res.code == 0, res.err
    return root / "m.safetensors"


# 5. export runs verify's check before it writes anything ----------------------------------


def _rewrite_shard(root: Path, index: int, change) -> None:
    """Rewrite shard ``index`` with ``change(codes)`` applied, checksum updated."""
    manifest = corpus_format.Manifest.read(root / "manifest.json")
    record = manifest.shards[index]
    opened = corpus_format.Corpus(root)
    entries = [(e.key, change(opened[e.key])) for e in record.entries]
    opened.close()
    path = root / record.file
    corpus_format.write_shard(path, entries, checkpoint_id=manifest.checkpoint_id,
                              cardinalities=manifest.cardinalities)  # fmt: skip
    record.sha256 = corpus_format.sha256_of(path)
    manifest.write(root / "manifest.json")


def _bump(codes: np.ndarray) -> np.ndarray:
    codes = codes.copy()
    codes[0, 0] = CARDS[0]  # one past the column's last code
    return codes


@pytest.mark.parametrize("to", ["parquet", "webdataset", "km"])
def test_a_bad_code_in_a_late_shard_is_found_before_anything_is_written(tmp_path, small_corpus,
                                                                         to):  # fmt: skip
    _rewrite_shard(small_corpus, 2, _bump)
    out = tmp_path / "out"
    args = ["--layout", "interleave"] if to == "km" else []
    res = run_cli("export", small_corpus, "--to", to, "--out", out, "--workers", "2", *args)
    assert f"holds code {CARDS[0]} >= {CARDS[0]}" in one_error(res)
    assert not out.exists()


def test_a_shard_listed_twice_is_refused_as_verify_refuses_it(tmp_path, small_corpus):
    manifest = json.loads((small_corpus / "manifest.json").read_text())
    manifest["shards"].append(manifest["shards"][0])
    (small_corpus / "manifest.json").write_text(json.dumps(manifest))
    assert "listed twice" in " ".join(error_lines(run_cli("verify", small_corpus)))
    res = run_cli("export", small_corpus, "--to", "parquet", "--out", tmp_path / "o")
    assert "listed twice in the manifest" in one_error(res)
    assert not (tmp_path / "o").exists()


def test_a_shard_whose_utterances_all_failed_writes_no_file(tmp_path, small_corpus):
    import datasets

    manifest = corpus_format.Manifest.read(small_corpus / "manifest.json")
    failed = manifest.shards[1]
    manifest.failures += [[e.key, "failed at encode"] for e in failed.entries]
    corpus_format.write_shard(small_corpus / failed.file, [], checkpoint_id=manifest.checkpoint_id,
                              cardinalities=manifest.cardinalities)  # fmt: skip
    failed.entries, failed.utterances, failed.frames = [], 0, 0
    failed.sha256 = corpus_format.sha256_of(small_corpus / failed.file)
    manifest.write(small_corpus / "manifest.json")
    out = tmp_path / "o"
    res = run_cli("export", small_corpus, "--to", "parquet", "--out", out, "--json")
    assert res.code == 0, res.err
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]  # fmt: skip
    rows = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "hf"))
    assert rows["train"].num_rows == 6


def test_a_corpus_with_no_utterance_is_refused(tmp_path):
    root = write_corpus(tmp_path / "c", {}, CARDS)
    res = run_cli("export", root, "--to", "parquet", "--out", tmp_path / "o")
    assert "holds no utterances" in one_error(res)


# 6. km export never wedges after a kill -----------------------------------------------------


def test_km_export_finishes_whatever_a_killed_run_left(tmp_path, small_corpus):
    args = ["--to", "km", "--layout", "interleave", "--workers", "1"]
    ref = tmp_path / "ref"
    assert run_cli("export", small_corpus, "--out", ref, *args).code == 0
    want = tree(ref)
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    # killed while removing the joined parts: a counts file stayed, its text parts did not
    (out / "parts").mkdir()
    np.save(out / "parts" / "train-00000.counts.npy", np.zeros(3, np.int64))
    res = run_cli("export", small_corpus, "--out", out, *args)
    assert res.code == 0, res.err
    assert tree(out) == want
    # killed before joining, with a part whose counts file stayed but whose units did not
    shutil.rmtree(out)
    first = run_cli("export", small_corpus, "--out", out, *args)
    assert first.code == 0
    for name in ("dict.km.txt", "train.km", "train.keys"):
        (out / name).unlink()
    (out / "parts").mkdir()
    for s in range(3):
        np.save(out / "parts" / f"train-{s:05d}.counts.npy", np.zeros(3, np.int64))
    res = run_cli("export", small_corpus, "--out", out, *args)
    assert res.code == 0, res.err
    assert tree(out) == want


# 7. a user's hidden file is never taken for a stale temp file -----------------------------


def test_stale_temp_cleanup_leaves_hidden_files_of_the_old_pattern(tmp_path, trained, corpus):
    out = tmp_path / "o"
    out.mkdir()
    (out / ".notes.999999.1.tmp").write_text("mine")
    assert run_cli("encode", trained, corpus, "--out", out).code == 0
    assert (out / ".notes.999999.1.tmp").read_text() == "mine"


# 8. a shard truncated under a reader; a SIGKILLed export parent ----------------------------


def test_a_shard_truncated_while_open_is_an_error_not_sigbus(tmp_path, small_corpus):
    script = textwrap.dedent(f"""
        import os
        from tokquant.formats.corpus import Corpus
        from tokquant.errors import FormatError
        corpus = Corpus({str(small_corpus)!r})
        keys = corpus.keys()
        corpus[keys[0]]  # the first shard is open now
        path = corpus.root / corpus.manifest.shards[0].file
        os.truncate(path, 40)
        try:
            corpus[keys[1]]
        except FormatError as exc:
            print("FormatError", exc)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert res.stdout.startswith("FormatError") and "truncated while open" in res.stdout


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigkill_of_the_export_parent_leaves_no_worker_running(tmp_path):
    root = write_corpus(tmp_path / "c", random_utterances(400, (1024,) * 8, seed=2,
                                                          max_frames=400), (1024,) * 8,
                        shard_size=4)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "tokquant", "export", root, "--to",
                             "parquet", "--out", tmp_path / "o", "--workers", "2", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    children: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        children = _children(proc.pid)
        if len(children) >= 3 and (tmp_path / "o" / "data").exists():  # tracker + 2 workers
            break
        time.sleep(0.05)
    assert proc.poll() is None and len(children) >= 3, "the export ended before the kill"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)]


# 9. outputs that cannot be folders ------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "under_a_file", "dangling", "loop", "read_only"])
def test_export_out_that_cannot_be_a_folder_is_one_line(tmp_path, small_corpus, kind):
    base = tmp_path / "base"
    base.mkdir()
    (base / "f").write_text("x")
    out = {"file": base / "f", "under_a_file": base / "f" / "out", "dangling": base / "d",
           "loop": base / "l", "read_only": base / "ro" / "out"}[kind]  # fmt: skip
    if kind == "dangling":
        out.symlink_to(base / "nowhere")
    if kind == "loop":
        out.symlink_to(out)
    (base / "ro").mkdir()
    before = tree(base)
    with read_only(base / "ro"):
        res = run_cli("export", small_corpus, "--to", "parquet", "--out", out)
    assert one_error(res)
    assert tree(base) == before


def test_train_out_into_a_read_only_folder_is_one_line(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml", train__steps=2)
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        res = run_cli("train", "-c", config, "-d", corpus, "-o", ro / "m.safetensors")
    assert "cannot write" in one_error(res)
    res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / "c.yaml" / "m.safetensors")
    assert one_error(res)


# 10. JSON that no file of ours holds ----------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def _corrupt_json(value: str):
    return {"deep": DEEP, "digits": "9" * 5000, "inf": "[1.5, 1e400]",
            "surrogate": '"\\ud800"'}[value]  # fmt: skip


@pytest.mark.parametrize("value", ["deep", "digits", "inf", "surrogate"])
def test_manifest_json_that_python_chokes_on_is_one_line(tmp_path, small_corpus, value):
    manifest = (small_corpus / "manifest.json").read_text()
    (small_corpus / "manifest.json").write_text(
        manifest.replace('"frame_rate": 50.0', f'"frame_rate": 50.0, "extra": {_corrupt_json(value)}')
    )  # fmt: skip
    for args in (["verify", small_corpus], ["export", small_corpus, "--to", "parquet", "--out",
                                             tmp_path / "o"]):  # fmt: skip
        assert "manifest" in one_error(run_cli(*args))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["deep", "digits", "inf", "surrogate"])
def test_rank_manifest_json_is_one_line(tmp_path, trained, corpus, value):
    root = tmp_path / "c"
    assert run_cli("encode", trained, corpus, "--out", root, "--shards", "--num-shards", 2,
                   "--shard-index", 0).code == 0  # fmt: skip
    part = root / corpus_format.part_name(0, 2)
    part.write_text(
        part.read_text().replace('"complete"', f'"x": {_corrupt_json(value)}, "complete"')
    )
    assert "manifest" in one_error(run_cli("merge", root))


@pytest.mark.parametrize("value", ["deep", "digits", "inf", "surrogate"])
def test_token_file_metadata_fails_that_file_alone(tmp_path, trained, corpus, value):
    tokens = tmp_path / "t"
    assert run_cli("encode", trained, corpus, "--out", tokens).code == 0
    from safetensors import safe_open

    bad = tokens / "a.tokens.safetensors"
    with safe_open(str(bad), "np") as fh:
        meta = dict(fh.metadata())
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    meta["quantizer"] = _corrupt_json(value)
    write_safetensors(bad, arrays, meta)
    res = run_cli("decode", trained, tokens, "--out", tmp_path / "d")
    assert "a.tokens.safetensors" in one_error(res, code=1)
    assert len(list((tmp_path / "d").rglob("*.npy"))) == 3


@pytest.mark.parametrize("value", ["deep", "digits", "inf", "surrogate"])
def test_checkpoint_metadata_json_is_one_line(tmp_path, trained, corpus, value):
    from tests.test_hostile import retag_checkpoint

    bad = retag_checkpoint(trained, tmp_path / "bad.safetensors",
                           meta_update={"summary": _corrupt_json(value)})  # fmt: skip
    for args in (["info", bad], ["encode", bad, corpus, "--out", tmp_path / "o"]):
        assert "bad.safetensors" in one_error(run_cli(*args))


def test_metadata_with_a_lone_surrogate_is_refused_before_any_file(tmp_path, small_corpus):
    keys = corpus_format.Corpus(small_corpus).keys()
    meta = tmp_path / "m.jsonl"
    lines = [json.dumps({"key": k, "text": "x"}) for k in keys[:-1]]
    lines.append(json.dumps({"key": keys[-1]})[:-1] + ', "text": "\\ud800"}')
    meta.write_text("\n".join(lines) + "\n")
    res = run_cli("export", small_corpus, "--to", "parquet", "--out", tmp_path / "o",
                  "--metadata", meta, "--workers", "2")  # fmt: skip
    assert "lone surrogate" in one_error(res)
    assert not (tmp_path / "o").exists()


# 11. config files -----------------------------------------------------------------------


def _bomb() -> str:
    parts = ["&a [" + ",".join(["1"] * 9) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        parts.append(f"&{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "quantizer:\n  family: fsq\n  levels: [[" + ", ".join(parts) + "]]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"quantizer: {family: bsq, code_dim: \xff}\n", "is not UTF-8"),
        (b"quantizer:\n  code_dim: " + b"9" * 5000 + b"\n", "cannot read"),
        (b"quantizer: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deep"),
        (_bomb().encode(), "quantizer.levels"),
        (b"quantizer: {family: fsq, levels: [" + b",".join([b"1"] * 10000) + b"]}\n",
         "found [1, 1, 1, 1, 1, 1, ...]"),
        (b"quantizer: {family: bsq}\nquantizer: {family: rvq}\n", "given twice"),
        (b"projection: {kind: mlp, hidden: 65536, depth: 16}\nfeatures: {dim: 80}\n",
         "about 1.88 TiB to train"),
        (b"quantizer: {family: rvq, num_levels: 64, num_embeddings: 1048576, codebook_dim: "
         b"65536}\nprojection: {kind: linear}\nfeatures: {dim: 80}\n", "about 64 TiB to train"),
    ],
)  # fmt: skip
def test_hostile_configs_are_one_line_before_anything_is_allocated(tmp_path, corpus, text,
                                                                    message):  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_bytes(text)
    res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / "m.safetensors")
    line = one_error(res)
    assert message in line and len(line) < 400
    assert not (tmp_path / "m.safetensors").exists()


def test_an_ssl_window_beyond_memory_is_refused_with_its_size():
    from tokquant.errors import ConfigError
    from tokquant.tokenizer.config import TokenizerConfig

    with pytest.raises(ConfigError, match=r"windows of 1e\+308 s .* need about more bytes"):
        TokenizerConfig.from_dict({"frontend": {"kind": "ssl", "model": "HUBERT_BASE",
                                                "window_seconds": 1e308}})  # fmt: skip
    scores = 12 * ((3600 + 2 * 1.0) * 50) ** 2 * 4  # heads x frames^2 float32 (HuBERT base)
    with pytest.raises(
        ConfigError, match=rf"windows of 3600 s .* need about {scores / 2**40:.3g} TiB"
    ):
        TokenizerConfig.from_dict({"frontend": {"kind": "ssl", "model": "HUBERT_BASE",
                                                "window_seconds": 3600}})  # fmt: skip


# 12. --max-frames far above the corpus --------------------------------------------------


def test_a_sample_far_larger_than_the_corpus_grows_with_what_is_read():
    from tokquant.runners.frames import FrameSample

    sample = FrameSample(10**9, seed=0, with_next=True)
    chunk = np.random.default_rng(0).standard_normal((342, 80)).astype(np.float32)
    sample.add(chunk)
    sample.end_input()
    held = sample.reservoir.nbytes + sample.following.nbytes + sample.present.nbytes
    assert held + sample.positions.nbytes < 2_000_000  # 1,024 frames' room, not 10^9
    np.testing.assert_array_equal(sample.frames(), chunk)
    nxt = sample.next_frames()
    np.testing.assert_array_equal(nxt.frames[:-1], chunk[1:])
    assert nxt.present.tolist() == [True] * 341 + [False]


def test_train_max_frames_far_above_the_corpus_runs(tmp_path, corpus):
    config = write_config(tmp_path / "c.yaml", train__steps=2)
    res = run_cli("train", "-c", config, "-d", corpus, "-o", tmp_path / "m.safetensors",
                  "--max-frames", 10**9)  # fmt: skip
    assert res.code == 0, res.err


# 13. folders 1,000 deep; paths over PATH_MAX --------------------------------------------


def _deep(base: Path, name: str, depth: int, leaf: str, data: bytes) -> None:
    fd = os.open(base, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    with open(os.open(leaf, os.O_CREAT | os.O_WRONLY, dir_fd=fd), "wb") as fh:
        fh.write(data)
    os.close(fd)


def _unchain(base: Path, name: str) -> None:
    """Remove what :func:`_deep` made, from the top, with short paths throughout
    (pytest's own clean-up recurses, and a path over PATH_MAX cannot be named)."""
    top, spare = base / name, base / f"{name[:200]}.up"
    while top.exists():
        inner = top / name
        if inner.is_dir():
            os.rename(inner, spare)
        for leftover in top.iterdir():
            leftover.unlink()
        top.rmdir()
        if spare.exists():
            os.rename(spare, top)


def test_a_folder_1000_levels_deep_is_read(tmp_path, trained, corpus):
    data = tmp_path / "in"
    data.mkdir()
    _deep(data, "a", 1000, "x.npy", (corpus / "a.npy").read_bytes())
    try:
        res = run_cli("encode", trained, data, "--out", tmp_path / "o", "--shards")
        assert res.code == 0, res.err
        assert len(corpus_format.Corpus(tmp_path / "o")) == 1
    finally:
        _unchain(data, "a")


def test_a_path_over_path_max_is_one_line(tmp_path, trained, corpus):
    data = tmp_path / "in"
    data.mkdir()
    _deep(data, "c" * 200, 25, "y.npy", (corpus / "a.npy").read_bytes())
    try:
        res = run_cli("encode", trained, data, "--out", tmp_path / "o")
        assert "over the system's length limit" in one_error(res)
    finally:
        _unchain(data, "c" * 200)


# 14. vocabularies beyond 64 bits --------------------------------------------------------


def test_offsets_beyond_64_bits_are_refused_in_one_line(tmp_path):
    cards = (2**63, 2**63)
    root = write_corpus(tmp_path / "c", {"a": np.array([[1, 2], [3, 2**63 - 1]])}, cards)
    assert run_cli("verify", root).code == 0
    res = run_cli("export", root, "--to", "parquet", "--out", tmp_path / "o", "--offsets")
    assert "does not fit in 64 bits; export without --offsets" in one_error(res)
    res = run_cli("export", root, "--to", "parquet", "--out", tmp_path / "p")
    assert res.code == 0, res.err


# 15. Ctrl-C at any moment ---------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 0.08, 0.15, 0.25])
def test_ctrl_c_while_the_cli_starts_is_one_line(tmp_path, delay):
    """The signal lands ``delay`` after the CLI's first module of its own was imported
    (``-X importtime`` says when), so a loaded machine's slow start moves nothing: the
    test times from an event, not from the process's birth (issue 29)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "tokquant", "verify",
                             tmp_path], stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen = []
    for line in proc.stderr:  # import lines, as each import finishes
        seen.append(line)
        if line.rstrip().split("|")[-1].strip() == "typer":  # imported inside entry's handler
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    # interrupted (130); done first (2: no corpus there); or interrupted as Python exits,
    # after the command's own handler is gone (-2: killed by SIGINT, nothing printed)
    assert proc.returncode in (130, 2, -signal.SIGINT), (proc.returncode, err)


@pytest.mark.parametrize("delay", [0.005, 0.03])
def test_ctrl_c_while_export_workers_start_is_one_line(tmp_path, delay):
    root = write_corpus(tmp_path / "c", random_utterances(60, (1024,) * 4, seed=3), (1024,) * 4,
                        shard_size=2)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "tokquant", "export", root, "--to",
                             "parquet", "--out", tmp_path / "o", "--workers", "2", "-q"],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not _children(proc.pid):
        pass  # the first worker is starting now
    time.sleep(delay)  # before this fix, every delay from 5 to 60 ms gave a traceback
    for pid in [proc.pid, *_children(proc.pid)]:  # as a terminal's Ctrl-C reaches the group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    if (tmp_path / "o").exists():
        no_leftovers(tmp_path / "o")


# 16, 17. messages, and valid files that were refused ----------------------------------------


def test_an_input_of_another_kind_names_every_form_an_input_takes(tmp_path, audio_ckpt):
    other = tmp_path / "x.csv"
    other.write_text("1,2\n")
    line = one_error(run_cli("encode", audio_ckpt, other, "--out", tmp_path / "o"))
    assert "x.csv: not an audio file (expected .wav" in line
    assert "a folder of them, or a list file (.txt, .lst, .list)" in line


@pytest.mark.parametrize("kind", ["fifo", "loop", "dangling"])
def test_an_input_that_is_no_file_says_what_it_is(tmp_path, trained, kind):
    path = tmp_path / "in.npy"
    if kind == "fifo":
        os.mkfifo(path)
        want = "a FIFO (named pipe), not a regular file"
    elif kind == "loop":
        path.symlink_to(path)
        want = "a symbolic link loop"
    else:
        path.symlink_to(tmp_path / "gone.npy")
        want = "a symbolic link to nothing"
    line = one_error(run_cli("encode", trained, path, "--out", tmp_path / "o"))
    assert want in line
    assert not (tmp_path / "o").exists()


def test_audit_with_nothing_readable_is_an_error_not_a_share(tmp_path, trained):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy")
    line = one_error(run_cli("audit", trained, bad))
    assert "nothing to audit, no input could be encoded: " in line and "bad.npy" in line


def test_jsonl_line_separators_inside_strings_and_a_bom_are_read(tmp_path, small_corpus):
    import pyarrow.parquet as pq

    keys = corpus_format.Corpus(small_corpus).keys()
    texts = {k: f"line\u2028sep\x85nel {i}" for i, k in enumerate(keys)}
    meta = tmp_path / "m.jsonl"
    body = "".join(json.dumps({"key": k, "text": t}, ensure_ascii=False) + "\n"
                   for k, t in texts.items())  # fmt: skip
    meta.write_bytes("\ufeff".encode() + body.encode())
    out = tmp_path / "o"
    res = run_cli("export", small_corpus, "--to", "parquet", "--out", out, "--metadata", meta)
    assert res.code == 0, res.err
    rows = pq.read_table(out / "data").to_pydict()
    assert dict(zip(rows["key"], rows["text"], strict=True)) == texts


def test_metadata_column_names_cannot_break_the_cards_table(tmp_path, small_corpus):
    keys = corpus_format.Corpus(small_corpus).keys()
    meta = tmp_path / "m.jsonl"
    meta.write_text("".join(json.dumps({"key": k, "a|b": 1, "two\nlines": "x"}) + "\n"
                            for k in keys))  # fmt: skip
    out = tmp_path / "o"
    assert run_cli("export", small_corpus, "--to", "parquet", "--out", out, "--metadata",
                   meta).code == 0  # fmt: skip
    card = (out / "README.md").read_text()
    table = card.split("| name | type | meaning |")[1].split("\n\n")[0].strip().splitlines()
    assert all(line.startswith("| ") and line.count(" | ") == 2 for line in table[1:]), table
    assert "| a\\|b | int64 |" in card and "| two\\nlines | string |" in card


def test_a_ctrl_c_inside_a_class_definition_is_the_interrupted_line(monkeypatch, capsys):
    """A SIGINT that lands while a module defines a dataclass reaches the CLI as
    ``RuntimeError: Error calling __set_name__`` (Python wraps it): still one line, 130."""
    import dataclasses

    from tokquant.cli import app as cli_app
    from tokquant.errors import INTERRUPTED

    def define_while_interrupted(*args, **kwargs):
        class Field:
            def __set_name__(self, owner, name):
                raise cli_app.Interrupted

        @dataclasses.dataclass
        class Spoiled:
            x: int = Field()  # type: ignore[assignment]

    monkeypatch.setattr("tokquant.jobs.inspect.VerifyJob.run", define_while_interrupted)
    with pytest.raises(SystemExit) as stop:
        cli_app.main(["verify", "."])
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip() == INTERRUPTED
