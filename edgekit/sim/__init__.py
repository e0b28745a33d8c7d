"""edgekit.sim."""
