"""Engines that run an encode plan (:class:`~tokquant.engines.plan.EncodePlan`):
:mod:`.local` in this process (one rank of a torchrun/SLURM run, or all of it) and
:mod:`.ray` on a Ray cluster. Where the codes go (token files, a corpus) is
:mod:`.outputs`, shared by both."""
