"""tokquant inside other engines' pipelines: :mod:`.hf` (``datasets.map``) and :mod:`.ray`
(Ray Data's ``map_batches``)."""
