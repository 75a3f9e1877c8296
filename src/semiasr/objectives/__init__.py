"""semiasr.objectives."""
