"""`cityops users add NAME --role ROLE [--department DEPT]` (issue #13, item 15).

The password is asked for without echo on a terminal (twice), or read as one line from
standard input when it is piped (scripts, tests). Every field is checked before anything is
hashed or stored, each refusal names the field, and nothing the database says about the row
(which would quote the password hash) reaches the screen.
"""

from __future__ import annotations

import getpass
import re
import sys
from typing import Annotated

import typer

from cityops.errors import InvalidInput

app = typer.Typer(help="People who log in.", no_args_is_help=True)
# the users table's own rule (migration 002), checked here to name the field
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MIN_PASSWORD = 8


def check_username(name: str) -> str:
    if not USERNAME.match(name):
        raise InvalidInput(f"NAME {name!r}: use 1 to 63 lowercase letters, digits, '.', '_' or "
                           "'-', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    from cityops.principal import Role

    names = [r.value for r in Role]
    if role not in names:
        raise InvalidInput(f"--role {role!r}: use one of {', '.join(names)}")
    return role


def read_password(name: str) -> str:
    """Asked twice without echo on a terminal; one line from a pipe."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {name}: ")
        if getpass.getpass("Again: ") != password:
            raise InvalidInput("password: the two entries differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    return password


def save_user(database_url: str, name: str, password_hash: str, role: str,
              department: str | None) -> None:
    """Create the user, or set its password, role and department and enable it again."""
    import psycopg

    from api.errors import integrity_error

    try:
        with psycopg.connect(database_url) as conn:
            if department is not None and conn.execute(
                    "SELECT 1 FROM departments WHERE id = %s", (department,)).fetchone() is None:
                raise InvalidInput(f"--department {department!r} is not registered")
            conn.execute(
                "INSERT INTO users (username, password_hash, role, department_id)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO UPDATE SET"
                " password_hash = excluded.password_hash, role = excluded.role,"
                " department_id = excluded.department_id, disabled = false,"
                " password_changed_at = now()",
                (name, password_hash, role, department))
    except psycopg.IntegrityError as err:  # its message quotes the row, hash included
        raise InvalidInput(integrity_error(err)[1]["detail"]) from None


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="login name: lowercase letters, digits, . _ -")],
    role: Annotated[str, typer.Option(help="admin (the system administrator: the first one"
                                           " is made here), operator, viewer, ...")],
    department: Annotated[str | None, typer.Option(
        help="the department the person belongs to (a registered department id)")] = None,
) -> None:
    """Create or update a user; the password is asked for (or read from a pipe)."""
    from api.auth import hash_password
    from api.passwords import check_complexity
    from cityops.logging import configure_logging
    from cityops.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    check_username(name)
    check_role(role)
    password = read_password(name)
    check_complexity(password, name, settings)  # the API's password rules (docs/security.md)
    save_user(settings.database_url.get_secret_value(), name, hash_password(password), role,
              department)
    where = f", department {department}" if department else ""
    typer.echo(f"user {name} ({role}{where}) saved")
