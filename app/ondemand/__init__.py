"""OnDemand sessions (spec D1–D3): one-time keys, the technician's queue, the public link page."""
