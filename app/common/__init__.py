"""Pieces every blueprint shares: rendering, headers, error pages, listings, mail."""
