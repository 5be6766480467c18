"""The relay: websocket endpoints that join Host agents and viewers (docs/protocol.md).

``views`` (the blueprint: ``/relay/agent``, ``/relay/devices/<id>/view``) hands each upgraded
connection to ``agent.serve_agent`` or ``viewer.serve_viewer``; ``hub`` holds who is connected
per device, the framebuffers and the checker greenlet; ``framebuffer`` the tiles; ``services``
what needs the database (admission, presence, audit); ``wsio`` the websocket framing.
"""
