"""The audit vocabulary, the one audit writer and chain verification."""
