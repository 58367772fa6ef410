"""Planning an export: every check that reads no shard (options, manifest, metadata,
output folder) and what it will write, before anything is written."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant import __version__
from tokquant.choices import EXPORT_FORMATS
from tokquant.data.layouts import TokenLayout
from tokquant.errors import InputError
from tokquant.formats import corpus as corpus_format
from tokquant.formats import km
from tokquant.formats.km import line_problem
from tokquant.formats.metadata import read_metadata
from tokquant.runners.export.folder import check_out
from tokquant.storage.digest import file_sha256

if TYPE_CHECKING:
    from tokquant.data.layouts import TokenLayout
    from tokquant.jobs.export import ExportOptions

FORMATS = EXPORT_FORMATS

#: fairseq's dictionary lists every id: beyond this a km export is surely a mistake.
KM_MAX_VOCAB = 2**24


@dataclass
class ExportPlan:
    """An export that passed every check that reads no shard: what :func:`run` does."""

    root: Path
    out: Path
    options: ExportOptions
    manifest: corpus_format.Manifest
    layout: TokenLayout
    info: dict[str, Any]
    #: ``(shard, output file)`` of every shard that holds an utterance.
    targets: list[tuple[corpus_format.ShardRecord, str]]
    metadata: Any  # Metadata | None
    joined: dict[str, Any]

    @property
    def outputs(self) -> list[str]:
        """Every file this export writes, relative to ``out``."""
        return _outputs(self.options, [t for _, t in self.targets])


def plan(root: Path, out: Path, options: ExportOptions) -> ExportPlan:
    """Check the options, the corpus manifest, the metadata and the output folder, and
    write nothing; a refusal raises a one-line TokquantError."""
    root, out = Path(root), Path(out)
    manifest = open_for_export(root)
    try:
        layout = TokenLayout(
            tuple(manifest.cardinalities), options.layout, options.offsets, options.dedup
        )
    except ValueError as exc:  # a flat vocabulary beyond 64 bits
        raise InputError(f"{root}: {exc}; export without `offsets`") from None
    _check_format(manifest, layout, options)
    metadata, joined = _join_metadata(manifest, options.metadata)
    info = _info(root, manifest, layout, options)
    check_out(out, info, options.overwrite)
    return ExportPlan(
        root, out, options, manifest, layout, info, _targets(manifest, options), metadata, joined
    )


def open_for_export(root: Path) -> corpus_format.Manifest:
    """The corpus' manifest; refuses a folder whose ranks were never merged."""
    root = Path(root)
    if not corpus_format.is_corpus(root):
        if root.is_dir() and any(root.glob("manifest.rank*.json")):
            raise InputError(
                f"{root}: an unmerged corpus (rank manifests only); run "
                f"`tokquant merge {root}` once every rank has finished"
            )
        raise InputError(f"{root}: not a corpus folder (no {corpus_format.MANIFEST})")
    return corpus_format.Manifest.read(root / corpus_format.MANIFEST)


def _check_format(manifest: corpus_format.Manifest, layout: Any, options: ExportOptions) -> None:
    if options.to == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError("`to='parquet'` needs pyarrow: pip install 'tokquant[export]'")
    if options.to != "km":
        return

    if layout.layout == "parallel" and layout.num_columns > 1:
        raise InputError(
            f"km holds one unit per position, and these codes have "
            f"{layout.num_columns} columns: use `layout='interleave'` or `layout='delay'`"
        )
    if layout.vocab_size > KM_MAX_VOCAB:
        raise InputError(
            f"km lists every id in dict.km.txt, and this vocabulary has "
            f"{layout.vocab_size} (at most {KM_MAX_VOCAB}): use another format"
        )
    if options.metadata is not None:
        raise InputError("km has no place for `metadata` columns: use parquet or webdataset")
    for _, _, entry in manifest.entries():
        problem = line_problem(entry.key)
        if problem is not None:
            raise InputError(problem)


def _join_metadata(
    manifest: corpus_format.Manifest, path: Path | None
) -> tuple[Any, dict[str, Any]]:
    if path is None:
        return None, {}

    metadata = read_metadata(path)
    keys = [e.key for _, _, e in manifest.entries()]
    in_corpus = set(keys)
    missing = [k for k in keys if k not in metadata.rows]
    unknown = sorted(k for k in metadata.rows if k not in in_corpus)
    return metadata, {
        "metadata_columns": list(metadata.columns),
        "metadata_joined": len(keys) - len(missing),
        "metadata_missing": len(missing),
        "metadata_missing_keys": missing[:5],
        "metadata_unknown": len(unknown),
        "metadata_unknown_keys": unknown[:5],
    }


def _info(
    root: Path, manifest: corpus_format.Manifest, layout: Any, options: ExportOptions
) -> dict[str, Any]:
    """What the export is: recorded in the plan file, the card and Parquet's schema."""
    meta_digest = None if options.metadata is None else file_sha256(options.metadata)
    return {
        "format": options.to,
        "tokquant": __version__,
        "corpus_manifest_sha256": file_sha256(root / corpus_format.MANIFEST),
        "metadata_sha256": meta_digest,
        "checkpoint_id": manifest.checkpoint_id,
        "frame_rate": manifest.frame_rate,
        "cardinalities": list(layout.cardinalities),
        "layout": layout.layout,
        "offsets": layout.offsets,
        "column_offsets": layout.column_offsets.tolist(),
        "dedup": layout.dedup,
        "vocab_size": layout.vocab_size,
        "pad_id": layout.pad_id,
        "dtype": layout.dtype.name,
        "split": options.split,
        "utterances": sum(len(s.entries) for s in manifest.shards),
        "frames": sum(s.frames for s in manifest.shards),
    }


def _targets(
    manifest: corpus_format.Manifest, options: ExportOptions
) -> list[tuple[corpus_format.ShardRecord, str]]:
    """An output file per shard that holds an utterance, numbered over those shards."""
    records = [record for record in manifest.shards if record.entries]
    if not records:
        raise InputError(
            "the corpus holds no utterances (every input failed at encode: "
            "see its manifest's failures); nothing to export"
        )
    n, split = len(records), options.split
    if options.to == "parquet":
        names = [f"data/{split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    elif options.to == "webdataset":
        names = [f"{split}-{i:05d}.tar" for i in range(n)]
    else:
        names = [f"parts/{split}-{i:05d}.counts.npy" for i in range(n)]
    return list(zip(records, names, strict=True))


def _outputs(options: ExportOptions, targets: list[str]) -> list[str]:
    """Every file an export writes: its shard files (with a km part's text files), the
    card, and km's joined files."""
    files = ["README.md", *targets]
    if options.to == "km":
        for target in targets:
            files += [f"parts/{p.name}" for p in km.part_files(Path(target))]
        files += [km.DICT, *km.output_names(options.split)]
    return files


def written(target: Path, options: ExportOptions) -> bool:
    """An output a killed run finished (a km part: its counts file and its text files)."""
    if options.to != "km":
        return target.exists()

    return target.exists() and all(p.exists() for p in km.part_files(target)[:2])
