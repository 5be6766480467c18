"""The production server: gevent's WSGI server with websocket support, plus the daily
housekeeping greenlet (audit retention). Started by ``tessera run``; expects gevent's
monkey-patching to have been applied already."""
from __future__ import annotations

import gevent
from gevent.pywsgi import WSGIServer

HOUSEKEEPING_EVERY = 24 * 3600


def housekeeping(app) -> None:
    from app.audit.services import purge_expired

    while True:
        with app.app_context():
            try:
                removed = purge_expired()
                if removed:
                    app.logger.info("audit retention: purged %d events", removed)
            except Exception:  # keep the loop alive; the next day tries again
                app.logger.exception("audit purge failed")
        gevent.sleep(HOUSEKEEPING_EVERY)


def serve(app, host: str, port: int) -> None:
    from app.relay.hub import get_hub
    from app.relay.upgrade import RelayHandler

    gevent.spawn(housekeeping, app)
    get_hub(app)  # the relay: presence left by a previous run is cleared, the checker starts
    server = WSGIServer((host, port), app, handler_class=RelayHandler)
    print(f"Tessera is listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=5)
