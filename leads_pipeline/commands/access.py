"""``leads access``: database logins for reading with plain SQL (psql, BI tools) under row-level security.

``leads access sql-login`` gives the acting user (``LEADS_USER``) a PostgreSQL login of the same name in the group
``leads_reader``: it reads exactly the lists it is a member of, whatever SQL it runs. The password comes from an
environment variable (never the command line, which other users of the machine can see).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from leads_pipeline.commands.common import acting_user, environment, fail, print_line, run_or_fail

app = typer.Typer(help="Database logins that read only your lists (row-level security).", no_args_is_help=True)


@app.command("sql-login")
def access_sql_login(
    password_env: Annotated[
        str, typer.Option("--password-env", help="The environment variable holding the login's password.")
    ],
) -> None:
    """Create (or reset the password of) your own database login, limited by PostgreSQL to your lists."""
    from leads_pipeline.lib.store import access, audit
    from leads_pipeline.lib.store.db import connect

    password = os.environ.get(password_env)
    if not password:
        fail(f"--password-env {password_env}: that environment variable is not set; export the password in it first")
    env = run_or_fail(environment)
    user = acting_user()

    def grant() -> None:
        with connect(env.database_url) as conn:
            access.grant_database_login(conn, user, password)
            audit.record(conn, user, "access.sql-login", f"user:{user}", {})

    run_or_fail(grant)
    print_line(f"database login {user!r} ready: it reads only the lists {user!r} is a member of")
