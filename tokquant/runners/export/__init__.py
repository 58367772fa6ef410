"""Export a corpus into the files LM trainers read: Parquet, WebDataset tars, fairseq units.

The corpus is read shard by shard (memory: one shard) and every corpus shard becomes one
output file, written atomically by its format's module; ``workers`` processes share the
shards. An export is resumable: ``OUT/.tokquant-export.json`` records what each split's
export is (corpus manifest digest, metadata digest, options) and the files it wrote
(:mod:`.folder`), a re-run of the same export skips the files that exist, and a killed run
finishes with the same bytes as an uninterrupted one. Another split sharing the format and
options is added beside the others; a different export of a split is refused unless
``overwrite``.

:mod:`.plan` checks everything that reads no shard and says what will be written;
:mod:`.run` checks the corpus and writes, shards spread over :mod:`.pool`'s processes,
each through its format's writer (``tokquant.formats.parquet``, ``.webdataset``, ``.km``).

Before anything is written, the corpus passes ``verify``'s own check (manifest, checksums,
keys, offsets, every code in range), so a damaged or unmerged corpus is refused whole, not
half exported. One export writes into a folder at a time (a lock in it; a second is
refused), ``--overwrite`` deletes only what the recorded export wrote (a folder that holds
no export is never emptied), and a shard whose every utterance failed at encode writes no
file (an empty Parquet file breaks ``load_dataset`` on the whole export).
"""
