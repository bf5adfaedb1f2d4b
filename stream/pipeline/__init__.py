"""Threads joined by bounded queues: the run loop, the two queue policies, freed-memory reuse."""
