"""edgekit.spool."""
