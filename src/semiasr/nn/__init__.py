"""semiasr.nn."""
