"""What every Tessera agent shares: the wire protocol (``protocol``, the implementation of
``docs/protocol.md``) and the connection to the relay (``transport``)."""
