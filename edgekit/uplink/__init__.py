"""edgekit.uplink."""
