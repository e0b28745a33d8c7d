"""edgekit.pipeline."""
