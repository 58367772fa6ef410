"""Jobs are a library (issue 31, first part): each request object run from Python writes the
CLI's bytes and reports the CLI's numbers, and prints nothing."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli
from tokquant.jobs import AuditJob, DecodeJob, EncodeJob, ExportJob, StatsJob

INPUTS = SAMPLES / "gb_f"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}  # fmt: skip


def silent(job) -> object:
    """``job.run()``, asserting it printed nothing."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = job.run()
    assert out.getvalue() == err.getvalue() == ""
    return result


@pytest.mark.parametrize("shards", [False, True])
def test_encode_decode_and_export_jobs_write_the_clis_bytes(tmp_path, logmel_rvq, shards):
    flags = ["--shards", "--shard-size", "4"] if shards else []
    assert run_cli("encode", logmel_rvq, INPUTS, "-o", tmp_path / "cli", *flags).code == 0
    report = silent(EncodeJob(logmel_rvq, [INPUTS], tmp_path / "py", shards=shards,
                              shard_size=4))  # fmt: skip
    assert tree(tmp_path / "py") == tree(tmp_path / "cli")
    assert report.done == 6 and not report.failures
    assert report.columns == {"tokens": report.frames * 3, "bits_per_frame": 15}
    assert run_cli("decode", logmel_rvq, tmp_path / "cli", "-o", tmp_path / "dcli").code == 0
    silent(DecodeJob(logmel_rvq, [tmp_path / "py"], tmp_path / "dpy"))
    assert tree(tmp_path / "dpy") == tree(tmp_path / "dcli")
    if shards:
        args = ("--to", "km", "--layout", "interleave", "--workers", "1")
        assert run_cli("export", tmp_path / "cli", *args, "-o", tmp_path / "ecli").code == 0
        silent(ExportJob(tmp_path / "py", tmp_path / "epy", to="km", layout="interleave",
                         workers=1))  # fmt: skip
        assert tree(tmp_path / "epy").keys() == tree(tmp_path / "ecli").keys()
        for name in ("train.km", "train.keys", "dict.km.txt"):
            assert (tmp_path / "epy" / name).read_bytes() == (tmp_path / "ecli" / name).read_bytes()


def test_stats_and_audit_jobs_report_the_clis_numbers(tmp_path, logmel_rvq):
    assert run_cli("encode", logmel_rvq, INPUTS, "-o", tmp_path / "tok").code == 0
    cli = json.loads(run_cli("stats", logmel_rvq, tmp_path / "tok", "--features", INPUTS,
                             "--json").out)  # fmt: skip
    report = silent(StatsJob(logmel_rvq, [tmp_path / "tok"], features=[INPUTS]))
    as_json = json.loads(json.dumps({"columns": [c.to_dict() for c in report.columns],
                                     "reconstruction": report.reconstruction.result().to_dict()}))  # fmt: skip
    assert as_json["columns"] == cli["columns"]
    assert as_json["reconstruction"] == cli["reconstruction"]
    assert report.checkpoint_id == cli["checkpoint_id"]
    cli = json.loads(run_cli("audit", logmel_rvq, INPUTS, "--json").out)
    audited = silent(AuditJob(logmel_rvq, [INPUTS]))
    assert audited.overall() == cli["overall"] == {"batched": 1.0, "chunked": 1.0}
    assert audited.checkpoint_id == cli["checkpoint_id"]


def test_a_job_refuses_with_the_clis_one_line(tmp_path, logmel_rvq):
    from tokquant.errors import InputError

    with pytest.raises(InputError, match="no such file or folder"):
        EncodeJob(logmel_rvq, [tmp_path / "nope"], tmp_path / "o").run()
    res = run_cli("encode", logmel_rvq, tmp_path / "nope", "-o", tmp_path / "o")
    assert res.code == 2 and res.err.count("\n") == 1 and "no such file or folder" in res.err


def test_train_job_writes_the_clis_checkpoint(tmp_path):
    from tokquant.jobs import TrainJob

    config = Path(__file__).resolve().parent.parent / "configs" / "logmel-rvq-8x1024.yaml"
    args = ["-c", config, "-d", INPUTS, "--steps", "3", "--batch-frames", "512"]
    res = run_cli("train", *args, "-o", tmp_path / "cli.safetensors", "--json")
    assert res.code == 0, res.err
    report = silent(TrainJob(config, [INPUTS], tmp_path / "py.safetensors", steps=3,
                             batch_frames=512))  # fmt: skip
    assert (tmp_path / "py.safetensors").read_bytes() == (tmp_path / "cli.safetensors").read_bytes()
    cli = json.loads(res.out)
    assert report.summary["checkpoint_id"] == cli["checkpoint_id"] and report.rank == 0
    assert {k: v for k, v in report.summary.items() if k not in ("seconds", "checkpoint")} == {
        k: v for k, v in cli.items() if k not in ("seconds", "checkpoint")}  # fmt: skip
