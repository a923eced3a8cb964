"""One module per channel kind; notifications/registry.py imports them all."""
