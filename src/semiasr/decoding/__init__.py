"""semiasr.decoding."""
