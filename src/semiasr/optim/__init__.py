"""semiasr.optim."""
