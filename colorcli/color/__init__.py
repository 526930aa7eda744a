"""Colour science: pure tensor/array functions (Lab conversion, ab bins, encoding, prior)."""
