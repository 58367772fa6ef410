"""The work behind each job's request (:mod:`tokquant.jobs`): a request module holds
what a user asks for and is read without torch (the CLI takes its defaults from it);
its ``run()`` calls the runner here. Shared machinery: :mod:`.features` (inputs to
feature frames through a tokenizer's front end), :mod:`.batcher` (encoding many inputs
in batches), :mod:`.frames` (training frames), :mod:`.ranks` (splitting inputs over
ranks) and :mod:`.each` (the per-input loop)."""
