"""Corpus: many utterances' codes in shard files, listed by a JSON manifest.

A corpus is a folder::

    manifest.json                       the corpus (written by encode, or by merge)
    manifest.rank00001-of-00004.json    one rank's part while ranks run
    shard-r00001-00000.safetensors      shards of rank 1: 0, 1, 2, ...

Shard (safetensors, read by byte range): ``codes.{g}`` 1-D ``[total_frames]`` per code column
in the smallest unsigned dtype (utterances concatenated), ``offsets`` int64
``[utterances + 1]`` (utterance ``i`` is ``codes[offsets[i]:offsets[i+1]]``), and metadata
``format = tokquant-shard``, ``format_version``, ``checkpoint_id``, ``keys`` (JSON list).

Manifest (JSON): ``format = tokquant-corpus``, ``format_version``, ``tokquant``,
``checkpoint_id``, ``quantizer``, ``columns``, ``frame_rate``, and ``shards``: a list of
``{file, sha256, utterances, frames, entries: [[key, source, frames], ...]}``, and
``failures`` (``[[key, message], ...]``); a rank part also has ``rank``, ``world_size``,
``plan``, ``shard_size`` and ``complete``. An entry's source is the input path, with
``#chC`` appended when channel ``C`` of the audio was encoded (in memory the channel is
:attr:`Entry.channel`; only this module reads or writes that suffix). Keys are relative
paths without extension; they never contain ``..`` or start with ``/``, so decoding a
corpus cannot write outside its output folder.

One check (:func:`open_shard`) serves readers and ``verify``: the file's sha256 against
the manifest (so a changed code is never decoded silently), its header, keys, offsets
and column shapes; codes are range-checked as they are read.

Everything is written atomically and deterministically (no timestamps, sorted JSON), so a
resumed run produces the same bytes as an uninterrupted one.

The package, one concept a module: :mod:`.keys` (names and safe keys), :mod:`.manifest`,
:mod:`.shards` (write, open and check), :mod:`.reader` (:class:`Corpus`, ``verify``),
:mod:`.writer` (:class:`CorpusWriter`, resumable) and :mod:`.merge`.
"""

from tokquant.formats.corpus.keys import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_NAME_BYTES,
    SHARD_FORMAT,
    check_key,
    is_corpus,
    is_corpus_file,
    key_problem,
    name_problem,
    part_name,
    shard_name,
)
from tokquant.formats.corpus.manifest import (
    Entry,
    Manifest,
    ShardRecord,
    manifest_problems,
)
from tokquant.formats.corpus.merge import merge_parts
from tokquant.formats.corpus.reader import (
    MAX_OPEN_SHARDS,
    Corpus,
    Utterance,
    describe,
    verify_corpus,
)
from tokquant.formats.corpus.shards import OpenShard, open_shard, shard_problems, write_shard
from tokquant.formats.corpus.writer import CorpusWriter, plan_id, run_record
from tokquant.storage.digest import file_sha256 as sha256_of

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_NAME_BYTES",
    "MAX_OPEN_SHARDS",
    "SHARD_FORMAT",
    "Corpus",
    "CorpusWriter",
    "Entry",
    "Manifest",
    "OpenShard",
    "ShardRecord",
    "Utterance",
    "check_key",
    "describe",
    "is_corpus",
    "is_corpus_file",
    "key_problem",
    "manifest_problems",
    "merge_parts",
    "name_problem",
    "open_shard",
    "part_name",
    "plan_id",
    "run_record",
    "sha256_of",
    "shard_name",
    "shard_problems",
    "verify_corpus",
    "write_shard",
]
