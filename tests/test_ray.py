"""Ray (issue 31) on a local two-CPU cluster: ``encode --engine ray`` over WebDataset tars
and a Parquet table writes the local run's codes key by key, passes ``verify``, survives
its workers being killed mid-run (Ray retries, the task resumes), and a second run
skips what is done; the Ray Data callable gives the CLI's codes too."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLES, run_cli, save_small_dac, save_small_mimi
from tests.test_corpus_sources import _dataset, _key, _same_codes
from tokquant.formats.corpus import Corpus, Manifest

ray = pytest.importorskip("ray")

FILES = sorted(SAMPLES.rglob("*.flac"))


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(logmel_rvq, tmp_path_factory) -> Corpus:
    out = tmp_path_factory.mktemp("ray-ref") / "c"
    assert run_cli("encode", logmel_rvq, SAMPLES, "--out", out, "--shards", "-q").code == 0
    return Corpus(out)


def _tars(root: Path, files: list[Path], count: int) -> str:
    import webdataset as wds

    for i in range(count):
        with wds.TarWriter(str(root / f"s-{i}.tar")) as sink:
            for f in files[i::count]:
                sink.write({"__key__": _key(f), "flac": f.read_bytes()})
    return str(root / f"s-{{0..{count - 1}}}.tar")


def test_ray_engine_writes_the_local_codes_verifies_and_resumes(
    tmp_path, cluster, logmel_rvq, reference
):
    tars = _tars(tmp_path, FILES[:14], 3)  # 3 tasks, one per tar
    _dataset(FILES[14:]).to_parquet(tmp_path / "rest.parquet", batch_size=5)  # 4 row groups
    out = tmp_path / "c"
    command = ["encode", logmel_rvq, tars, tmp_path / "rest.parquet", "--out", out,
               "--shards", "--shard-size", "2", "--engine", "ray", "--json"]  # fmt: skip
    first = run_cli(*command)
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    assert summary["tasks"] == 7 and summary["shards_resumed"] == 0
    _same_codes(out, reference)
    assert run_cli("verify", out).code == 0
    manifest = (out / "manifest.json").read_bytes()

    again = run_cli(*command)
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert summary["shards_written"] == 0
    assert summary["shards_resumed"] == len(Manifest.read(out / "manifest.json").shards)
    assert (out / "manifest.json").read_bytes() == manifest


def _encoder_processes() -> list[int]:
    """Ray workers running a task of the encode actors (Ray titles them by their task)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::_Encoder.encode_task"):
                pids.append(int(entry.name))
    return pids


def _recorded_but_running(part: Path) -> bool:
    try:
        manifest = Manifest.read(part)
    except Exception:  # being replaced at this moment
        return False
    return bool(manifest.shards) and not manifest.extra.get("complete")


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds workers in /proc")
def test_workers_killed_mid_run_are_retried_and_the_corpus_is_whole(
    tmp_path, cluster, logmel_rvq, reference
):
    from tokquant.jobs import EncodeJob

    tars = _tars(tmp_path, FILES, 2)  # 2 tasks of 15 one-utterance shards
    out = tmp_path / "c"
    job = EncodeJob(logmel_rvq, [tars], out, shards=True, shard_size=1, engine="ray",
                    batch_frames=64, workers=1)  # fmt: skip
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(report=job.run()))
    runner.start()
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while runner.is_alive() and not killed and time.monotonic() < deadline:
        # a task has recorded a shard and has not finished: kill the running workers
        if any(_recorded_but_running(path) for path in out.glob("manifest.rank*.json")):
            for pid in _encoder_processes():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.002)
    runner.join(timeout=180)
    assert killed, "no worker was running when both tasks had shards"
    report = result["report"]
    assert report.shards_resumed >= 1  # a retried task kept its finished shards
    assert report.done == len(FILES) and not report.failures
    _same_codes(out, reference)
    assert run_cli("verify", out).code == 0


def test_ray_data_callable_gives_the_clis_codes(cluster, logmel_rvq, reference):
    import soundfile as sf

    from tokquant.engines.ray import Tokenize

    rows = [{"id": _key(f), "audio": f.read_bytes()} for f in FILES[:8]]
    for f in FILES[8:12]:  # decoded samples with their rate
        wave, rate = sf.read(f, dtype="float32")
        rows.append({"id": _key(f), "audio": wave, "sample_rate": rate})
    for part in (rows[:8], rows[8:]):
        data = ray.data.from_items(part)
        mapped = data.map_batches(Tokenize, fn_constructor_args=(str(logmel_rvq),),
                                  batch_size=3, concurrency=1, batch_format="numpy")  # fmt: skip
        got = {row["id"]: row for row in mapped.take_all()}
        assert len(got) == len(part)
        for key, row in got.items():
            codes = np.asarray(row["codes"])
            assert row["num_frames"] == codes.shape[0]
            assert np.array_equal(codes, reference[key]), key


@pytest.mark.parametrize("codec", ["dac", "mimi"])
def test_a_codec_tokenizer_on_ray_writes_the_local_codes(tmp_path, cluster, codec):
    """Issue 39: the corpus engine runs a codec tokenizer as any other: Ray's corpus equals
    the local one key by key and passes verify."""
    pytest.importorskip("transformers")
    save = {"dac": save_small_dac, "mimi": save_small_mimi}[codec]
    save(tmp_path / codec)  # a codec tokenizer: its own decoder
    ckpt = tmp_path / "codec.safetensors"
    assert run_cli("import", "codec", tmp_path / codec, "--out", ckpt).code == 0
    inputs = SAMPLES / "us_f"
    local = run_cli("encode", ckpt, inputs, "--out", tmp_path / "local", "--shards",
                    "--shard-size", "2", "-q")  # fmt: skip
    assert local.code == 0, local.err
    res = run_cli("encode", ckpt, inputs, "--out", tmp_path / "ray", "--shards",
                  "--shard-size", "2", "--engine", "ray", "--json")  # fmt: skip
    assert res.code == 0, res.err
    _same_codes(tmp_path / "ray", Corpus(tmp_path / "local"))
    assert run_cli("verify", tmp_path / "ray").code == 0
