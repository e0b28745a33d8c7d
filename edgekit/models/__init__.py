"""edgekit.models."""
