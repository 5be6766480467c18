"""The Host agent: shares an X11 desktop through the Portal's relay (``tessera-agent``)."""
