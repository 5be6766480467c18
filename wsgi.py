"""WSGI entry for servers that import an application object (gunicorn -k geventwebsocket...).

gevent's monkey-patching comes first, before anything else is imported."""
from gevent import monkey

monkey.patch_all()

from app import create_app  # noqa: E402

app = application = create_app()
