"""``tessera assign`` and ``tessera check-permissions``: the Role assignments and Check
permissions pages for scripts (mass roll-outs, tests).

Registered by ``app.cli.register_commands``. Both call the same services as the pages
(``app.assignments.services`` and ``app.assignments.permissions``); bad input ends with a
clear message and exit status 1 (click's ``ClickException``), nothing written.
"""
from __future__ import annotations

import json
from datetime import datetime

import click


def _fail(err) -> click.ClickException:
    return click.ClickException(err.message)


def register(app) -> None:
    @app.cli.command("assign")
    @click.option("--company", required=True, help="The account's company name.")
    @click.option("--name", required=True, help="Name of the new role assignment (unique in the account).")
    @click.option("--role", required=True, help="Name of one of the account's roles.")
    @click.option("--everyone", is_flag=True, help="For every user of the account.")
    @click.option("--user-group", "user_groups", multiple=True, help="A user group (local, LDAP or SAML); repeatable.")
    @click.option("--everything", is_flag=True, help="On every device of the account.")
    @click.option("--device-group", "device_groups", multiple=True, help="A device group; repeatable.")
    @click.option("--schedule", default=None, help="Name of an existing schedule.")
    @click.option("--description", default="")
    @click.option("--inactive", is_flag=True, help="Create it switched off.")
    def assign_command(company, name, role, everyone, user_groups, everything, device_groups, schedule,
                       description, inactive):
        """Create a role assignment: (--everyone | --user-group G) (--everything | --device-group G).
        OnDemand roles take neither --everything nor --device-group."""
        from app.assignments import services
        from app.errors import TesseraError
        from app.models import GroupKind
        from app.users.services import find_account

        try:
            account = find_account(company)
            found_role = services.find_role(account.id, role)
            users = [services.find_group(account.id, g, services.USER_GROUP_KINDS).id for g in user_groups]
            devices = [services.find_group(account.id, g, (GroupKind.device,)).id for g in device_groups]
            schedule_id = services.find_schedule(account.id, schedule).id if schedule else None
            created = services.create_assignment(account.id, services.AssignmentValues(
                name=name, role_id=found_role.id, active=not inactive, everyone=everyone,
                user_group_ids=tuple(users), everything=everything, device_group_ids=tuple(devices),
                description=description, schedule_id=schedule_id))
        except TesseraError as err:
            raise _fail(err) from None
        click.echo(f"Created role assignment {created.name!r} (id {created.id}) in {account.company!r}")

    @app.cli.command("check-permissions")
    @click.option("--company", required=True)
    @click.option("--user", "username", required=True, help="The user's username (email).")
    @click.option("--device", required=True, help="Hostname, alias, or #id when several share a name.")
    @click.option("--at", "at_text", default=None,
                  help="ISO-8601 moment; without an offset it is read in --tz. Default: now.")
    @click.option("--tz", "zone_name", default=None, help="Timezone for --at (default: the account's).")
    def check_permissions_command(company, username, device, at_text, zone_name):
        """Print, as JSON, what a user may do on a device at a moment, and why."""
        from app.assignments import permissions, schedule, services
        from app.errors import TesseraError, ValidationError
        from app.models import utcnow
        from app.users.services import find_account

        try:
            account = find_account(company)
            zone = schedule.zone(zone_name or account.timezone or "UTC")
            if at_text:
                try:
                    at = datetime.fromisoformat(at_text)
                except ValueError:
                    raise ValidationError(f"--at {at_text!r} is not an ISO-8601 date and time "
                                          "(like 2024-03-31T09:30 or 2024-03-31T07:30:00+00:00).") from None
                if at.tzinfo is None:
                    at = at.replace(tzinfo=zone)
            else:
                at = utcnow()
            membership = services.find_member(account.id, username)
            found = services.find_device(account.id, device)
            result = permissions.check_permissions(membership, found, at)
        except TesseraError as err:
            raise _fail(err) from None
        data = {"company": account.company, "user": membership.user.username,
                "device": {"id": found.id, "hostname": found.hostname, "status": found.status},
                "timezone": zone.key, "local_time": at.astimezone(zone).isoformat(),
                "utc": at.astimezone(schedule.zone("UTC")).isoformat()}
        data.update(result.as_dict())
        click.echo(json.dumps(data, indent=2))
