"""Application layer: authorize -> load or write -> audit. Knows no Strawberry types."""
