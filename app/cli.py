"""The ``tessera`` command: server, database, accounts, demo data, audit retention.

``main()`` is the console-script entry. For ``tessera run`` it applies gevent's
monkey-patching first, before Flask or the database driver is imported (once, here and in
``wsgi.py`` only).
"""
from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from gevent import monkey

        monkey.patch_all()
    from flask.cli import FlaskGroup

    from app import create_app

    cli = FlaskGroup(create_app=lambda: create_app(), add_default_commands=False,
                     add_version_option=False, help="Tessera Portal and relay.")
    from flask.cli import routes_command, shell_command

    cli.add_command(routes_command)
    cli.add_command(shell_command)
    cli.main(prog_name="tessera")


def register_commands(app) -> None:
    import click

    from app.models import UserType

    @app.cli.command("create-account")
    @click.option("--company", required=True)
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    def create_account_command(company, email, password):
        """Create an account and its owner (the username is the email)."""
        from app.errors import TesseraError
        from app.users.services import create_account

        try:
            account = create_account(company, email, password)
        except TesseraError as err:
            raise click.ClickException(err.message) from None
        click.echo(f"Created account {account.company!r} (id {account.id}) owned by {email}")

    @app.cli.command("create-user")
    @click.option("--company", required=True)
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    @click.option("--type", "user_type", default="user",
                  type=click.Choice(["user", "group-manager", "administrator"]))
    def create_user_command(company, email, password, user_type):
        """Add a user of the given type to an existing account."""
        from app.errors import TesseraError
        from app.users.services import create_user, find_account

        try:
            create_user(find_account(company), email, password, UserType.parse(user_type))
        except TesseraError as err:
            raise click.ClickException(err.message) from None
        click.echo(f"Created {user_type} {email} in {company!r}")

    @app.cli.command("create-group")
    @click.option("--company", required=True)
    @click.option("--kind", required=True, type=click.Choice(["user", "device"]))
    @click.option("--name", required=True)
    @click.option("--member", "members", multiple=True,
                  help="A user's email (user groups) or a device's hostname (device groups); repeat it.")
    def create_group_command(company, kind, name, members):
        """Create a user or device group, with members; one unknown member creates nothing."""
        from app.errors import TesseraError
        from app.groups.services import create_group_with_members, parse_kind
        from app.users.services import find_account

        try:
            group = create_group_with_members(find_account(company).id, parse_kind(kind), name,
                                              list(members))
        except TesseraError as err:
            raise click.ClickException(err.message) from None
        click.echo(f"Created {group.kind.label.lower()} {group.name!r} (id {group.id}) in "
                   f"{company!r} with {len(members)} member{'s' if len(members) != 1 else ''}")

    @app.cli.command("create-package")
    @click.option("--company", required=True)
    @click.option("--name", required=True)
    @click.option("--enrolled", is_flag=True,
                  help="Devices are enrolled at once (default: pending until an administrator enrolls them).")
    @click.option("--device-group", default=None, help="The name of a device group devices join.")
    def create_package_command(company, name, enrolled, device_group):
        """Create a deployment package and print its enrolment key (only the key, for scripts)."""
        from app.downloads.services import PackageData, create_package, find_device_group
        from app.errors import TesseraError
        from app.models import EnrolmentState
        from app.users.services import find_account

        try:
            account = find_account(company)
            group = find_device_group(account.id, device_group) if device_group is not None else None
            package = create_package(account.id, PackageData(
                name=name, device_group_id=group.id if group else None,
                enrolment_state=EnrolmentState.enrolled if enrolled else EnrolmentState.pending))
        except TesseraError as err:
            raise click.ClickException(err.message) from None
        click.echo(package.enrollment_key)

    @app.cli.command("demo")
    def demo_command():
        """Create the demo account with one user of every type (idempotent)."""
        from app.demo import seed_demo

        for line in seed_demo():
            click.echo(line)

    audit = click.Group("audit", help="Audit log maintenance.")
    app.cli.add_command(audit)

    @audit.command("purge")
    def audit_purge_command():
        """Delete audit events older than the retention period (six months), oldest first."""
        from app.audit.services import purge_expired

        click.echo(f"Purged {purge_expired()} audit events")

    @app.cli.command("run")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, type=int, show_default=True)
    def run_command(host, port):
        """Serve the Portal and relay with gevent (websockets included)."""
        from app.server import serve

        serve(app, host, port)

    from app.assignments.cli import register as register_assignment_commands

    register_assignment_commands(app)  # tessera assign, tessera check-permissions
    from app.downloads.cli import register as register_download_commands

    register_download_commands(app)  # tessera agent build-wheel
