"""tokquant inside other engines' pipelines: :mod:`.hf` (``datasets.map``)."""
