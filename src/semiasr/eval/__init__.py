"""semiasr.eval."""
