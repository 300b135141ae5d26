"""Staff accounts of the workspace, from the command line:

    python -m services.backoffice.staff add NAME          # asks for the password (or reads it from stdin)
    python -m services.backoffice.staff disable NAME      # and closes the account's sessions
    python -m services.backoffice.staff enable NAME
    python -m services.backoffice.staff list

It uses the service's settings (`COD_MONGO_URI`, `COD_MONGO_DATABASE`), and writes each change to the audit log.
"""

import argparse
import asyncio
import getpass
import sys

from services.backoffice.auth import hash_password
from services.backoffice.repository import MongoStaffRepository
from services.backoffice.settings import BackofficeSettings
from shared.contracts import utc_now
from shared.mongo import make_mongo_client

ACTOR = "command line"


async def run(command: str, name: str | None, password: str | None, settings: BackofficeSettings) -> int:
    client = make_mongo_client(settings.mongo_uri, "backoffice-staff")
    staff = MongoStaffRepository(client, settings.mongo_database)
    try:
        if command == "list":
            for account in await staff.accounts():
                state = "disabled" if account.disabled else "active"
                last = account.last_signin_at.isoformat() if account.last_signin_at else "never"
                print(f"{account.name}\t{state}\tcreated {account.created_at.isoformat()}\tlast sign-in {last}")
            return 0
        assert name is not None
        if command == "add":
            assert password is not None
            if not await staff.add_account(name, hash_password(password), utc_now()):
                print(f"error: an account named {name!r} exists already", file=sys.stderr)
                return 1
            await staff.audit(utc_now(), ACTOR, "staff.add", name)
        elif not await staff.set_disabled(name, command == "disable"):
            print(f"error: no account named {name!r}", file=sys.stderr)
            return 1
        else:
            await staff.audit(utc_now(), ACTOR, f"staff.{command}", name)
        print(f"{command}: {name}")
        return 0
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.backoffice.staff", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["add", "disable", "enable", "list"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    args = parser.parse_args(argv)
    if args.command != "list" and not args.name:
        parser.error(f"{args.command} needs a NAME")
    password = None
    if args.command == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
        try:
            hash_password(password)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return asyncio.run(run(args.command, args.name, password, BackofficeSettings()))


if __name__ == "__main__":
    sys.exit(main())
