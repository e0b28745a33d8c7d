"""edgekit.collector."""
