"""Installs the ``tessera`` distribution: the Portal (``app``), the hot-path extension
(``relay_ext``) and the agents (``agents``).

``pip install -e .`` compiles every ``relay_ext/*.pyx`` with Cython when there is one; the
pure-Python twins keep working when no compiler is present.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def cython_extensions():
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "relay_ext").glob("*.pyx"))
    if not sources:
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    extensions = [
        Extension(f"relay_ext.{Path(src).stem}", [src], extra_compile_args=["-O3"])
        for src in sources
    ]
    return cythonize(extensions, language_level=3)


setup(
    name="tessera",
    version="0.1.0",
    description="Self-hosted remote support and remote control platform",
    packages=find_packages(include=["app", "app.*", "relay_ext", "relay_ext.*", "agents", "agents.*"]),
    ext_modules=cython_extensions(),
    include_package_data=True,
    python_requires=">=3.11",
    install_requires=[
        "flask>=3.0",
        "flask-login>=0.6",
        "flask-sqlalchemy>=3.1",
        "sqlalchemy>=2.0",
        "flask-migrate>=4.0",
        "flask-wtf>=1.2",
        "flask-limiter>=3.5",
        "argon2-cffi>=23",
        "email-validator>=2",
        "jinja2-fragments>=1.3",
        "py-svg-hush>=0.3",
        "gevent>=24",
        "gevent-websocket>=0.10",
        "zstandard>=0.22",
        "psycopg[binary]>=3.1",
        "redis>=5",
        "python-dateutil>=2.8",
        # QR codes of OnDemand links (app/ondemand/links.py).
        "segno>=1.6",
        # The Portal builds the agent wheel it serves (app/downloads/agent_wheel.py).
        "setuptools>=70.1",
        # The Host agent (agents/host): screen capture, XTest input, its websocket client.
        "mss>=10.2",
        "python-xlib>=0.33",
        "websockets>=13",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "hypothesis>=6",
            "aiosmtpd>=1.4",
            "cryptography>=42",
            "playwright>=1.40",
            "requests>=2.31",
            "numpy>=1.26",  # the benchmarks' peer implementations (bench/tiles.py)
            "websockify>=0.11",  # the relay benchmarks' peer (bench/relay.py, bench/slow_viewer.py)
        ],
        "bench": ["numpy>=1.26", "websockify>=0.11"],
        "ldap": ["python-ldap>=3.4"],
    },
    entry_points={"console_scripts": ["tessera=app.cli:main",
                                      "tessera-agent=agents.host.__main__:main",
                                      "tessera-ondemand=agents.ondemand.__main__:main"]},
)
