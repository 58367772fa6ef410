"""On-disk formats; each module owns one: checkpoints, token files, feature files."""
