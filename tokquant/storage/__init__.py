"""Low-level file handling every package shares, and nothing tokquant-specific.

:mod:`.atomic` (writes a reader sees whole or not at all), :mod:`.lock` (one writer per
output folder), :mod:`.digest` (sha256 of a file), :mod:`.safe_json` (JSON from users,
refused in one line when hostile) and :mod:`.torch_load` (weights-only ``torch.load``).
The file formats in :mod:`tokquant.formats` and the jobs build on them.
"""
