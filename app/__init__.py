"""namegen HTTP service."""
