"""tokquant inside other engines (issue 31): ``datasets.map`` with ``tokenize_fn`` gives the
codes ``tokquant encode`` writes for the bundled corpus, in one process or two."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import SAMPLES, run_cli
from tokquant.formats.corpus import Corpus
from tokquant.integrations.hf import tokenize_fn

FILES = sorted(SAMPLES.rglob("*.flac"))


@pytest.fixture(scope="module")
def reference(logmel_rvq, tmp_path_factory) -> Corpus:
    out = tmp_path_factory.mktemp("hf-ref") / "c"
    assert run_cli("encode", logmel_rvq, SAMPLES, "--out", out, "--shards", "-q").code == 0
    return Corpus(out)


def _key(f):
    return f.relative_to(SAMPLES).with_suffix("").as_posix()


@pytest.mark.parametrize("num_proc", [None, 2])
def test_datasets_map_gives_the_clis_codes(logmel_rvq, reference, num_proc):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({
        "id": [_key(f) for f in FILES],
        "audio": [{"bytes": f.read_bytes(), "path": f.name} for f in FILES],
    }).cast_column("audio", datasets.Audio(decode=False))  # fmt: skip
    mapped = data.map(tokenize_fn(logmel_rvq), batched=True, batch_size=7, with_rank=True,
                      num_proc=num_proc, remove_columns=["audio"])  # fmt: skip
    assert len(mapped) == len(FILES)
    for row in mapped:
        codes = np.asarray(row["codes"], dtype=np.int64)
        assert row["num_frames"] == codes.shape[0]
        assert np.array_equal(codes, reference[row["id"]]), row["id"]


def test_decoded_arrays_give_the_same_codes(logmel_rvq, reference):
    fn = tokenize_fn(logmel_rvq)
    cells = []
    for f in FILES[:4]:
        wave, rate = sf.read(f, dtype="float64")  # as datasets decodes: float64 samples
        cells.append({"array": wave, "sampling_rate": rate, "path": f.name})
    out = fn({"audio": cells})
    for f, codes in zip(FILES[:4], out["codes"], strict=True):
        assert np.array_equal(np.asarray(codes), reference[_key(f)])
    with pytest.raises(ValueError, match="row 0: x.flac: file not found"):
        fn({"audio": [{"path": "x.flac"}]})  # a path-only cell is read, where it exists
    with pytest.raises(ValueError, match="neither decoded audio nor audio bytes"):
        fn({"audio": [{"path": None, "bytes": None}]})
