"""Resilience for the shell: error taxonomy, circuit breakers, bounded retries, clocks."""
