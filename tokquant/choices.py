"""The allowed values of every enumerated setting, written once.

The library validates against these tuples and the CLI builds its choices from them
(:func:`tokquant.cli._options.choices`), so the two cannot disagree. Plain data: the CLI
imports it at start-up, before torch. Quantizer families are the keys of
:data:`tokquant.quantizers.params.FAMILY_PARAMS`.
"""

#: A feature file's 2-D array: frames x dim (tc), or dim x frames (ct).
FEATURE_LAYOUTS = ("tc", "ct")
#: How several audio channels become inputs: averaged into one, or one input each.
CHANNEL_MODES = ("mix", "split")
#: Audio front ends (``none``: inputs are feature files).
FRONTENDS = ("none", "logmel", "fbank", "mfcc", "ssl", "codec")
#: How an exported utterance's code columns are laid out (:mod:`tokquant.data.layouts`).
TOKEN_LAYOUTS = ("parallel", "interleave", "delay")
#: What ``tokquant export`` writes.
EXPORT_FORMATS = ("parquet", "webdataset", "km")
#: Peers whose RVQ ``tokquant import`` reads: vector-quantize-pytorch, EnCodec, DAC.
PEER_KINDS = ("vqp", "encodec", "dac", "codec")
#: Where ``tokquant encode`` runs: this process (or this rank of torchrun/SLURM), or Ray.
ENGINES = ("local", "ray")
#: Neural codecs whose encoders (and decoders) tokquant runs through ``transformers``.
CODECS = ("encodec", "dac", "mimi")
