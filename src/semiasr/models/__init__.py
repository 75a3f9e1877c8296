"""semiasr.models."""
