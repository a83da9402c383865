"""Bottom layer: settings, crypto, tokens, the principal and errors. Imports nothing of ours."""
