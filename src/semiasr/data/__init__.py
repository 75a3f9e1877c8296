"""semiasr.data."""
