"""``tessera agent build-wheel``: the Host agent wheel the Linux installer downloads, for
scripts (warm the cache before the first installer is fetched, or copy the wheel elsewhere).

Registered by ``app.cli.register_commands``; the build is ``app.downloads.agent_wheel``'s, the
same the ``/downloads/agent/<file>`` route serves.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click


def register(app) -> None:
    agent = click.Group("agent", help="The Host agent the Portal serves.")
    app.cli.add_command(agent)

    @agent.command("build-wheel")
    @click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Copy the wheel into this folder (default: leave it in the instance "
                       "folder's cache, where the Portal serves it from).")
    def build_wheel_command(out_dir):
        """Build the agent wheel (or reuse the cached build) and print its path and SHA-256."""
        from app.downloads.agent_wheel import AgentWheelError, wheel_for_app

        try:
            wheel = wheel_for_app(app)
        except AgentWheelError as err:
            raise click.ClickException(str(err)) from None
        path = wheel.path
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / wheel.filename
            # A temporary name first: a reader of the folder never sees half a wheel.
            fd, partial = tempfile.mkstemp(prefix=f".{wheel.filename}.", dir=out_dir)
            os.close(fd)
            shutil.copyfile(wheel.path, partial)
            os.chmod(partial, 0o644)
            os.replace(partial, path)
        click.echo(f"{path}\nsha256 {wheel.sha256}")
