"""semiasr.semiring."""
