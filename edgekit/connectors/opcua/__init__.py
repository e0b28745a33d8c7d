"""OPC UA connector."""
