"""semiasr.train."""
