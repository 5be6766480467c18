"""The OnDemand agent, ``tessera-ondemand``: help a stranger's computer once (spec D2, D4).

The person runs it with a one-time session key (from the Portal's link page, its launcher or a
``tessera-ondemand://`` link), it waits in the technician's queue, and nothing of the computer
is sent until the person allows it in the consent window. Built on the Host agent's code
(``agents.host``: capture, frame encoding, input, clipboard, the connection loop):

``options``  the command line, the link and the typed key
``agent``    the connection: consent, what a session may do, close codes
``consent``  the permissions a person can allow, and the CONSENT bits
``hotkey``   Ctrl+Shift+X grabbed on the X display
``logo``     the company's logo for the window
``windows``  the Tk windows (key, waiting, consent, banner, the end)
"""
