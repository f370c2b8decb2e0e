"""``leads sandbox``: generate worlds and lead files, and run the provider sandbox in the foreground.

The main CLI mounts ``app``; every command here is a thin shell over ``generate``, ``world`` and ``server`` so
that tests and benchmarks can do the same from Python. Those modules (the emulators, dnspython, the world
generator: 0.12 s) are imported by the commands that use them, not by every ``leads`` command.
"""

from __future__ import annotations

import shlex
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from leads_pipeline.lib.errors import LeadsError

DemoDataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Copy of shared/data the demo world is drawn from (default: beside the repo)."),
]
"""The option of the commands that serve the demo world (`leads demo`, `leads sandbox tour`): a wheel has no
shared/data beside it."""

app = typer.Typer(
    help="Provider sandbox: a generated world served by local DNS, SMTP and HTTP emulators of the providers.",
    no_args_is_help=True,
)
world_app = typer.Typer(help="Generate sandbox worlds and lead files drawn from them.", no_args_is_help=True)
app.add_typer(world_app, name="world")


def _fail(error: Exception) -> typer.Exit:
    """One line and exit code 1, as every other command's refusal (``commands.common.fail``): 2 is click's, for a
    command line it cannot parse."""
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=1)


@world_app.command("generate")
def world_generate(
    out: Annotated[Path, typer.Argument(help="World file to write (JSON).")],
    companies: Annotated[int, typer.Option(min=1, help="Number of companies.")] = 100,
    people: Annotated[int, typer.Option(min=0, help="Number of people across all companies.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 7,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Copy of shared/data with the datablist samples (default: beside the repo)."),
    ] = None,
) -> None:
    """Generate a world (companies, people, mail behaviour, phones, profiles) and write it to OUT."""
    from leads_pipeline.sandbox.generate import generate_world
    from leads_pipeline.sandbox.world import save_world

    try:
        world = generate_world(companies, people, seed, data_dir)
    except (ValueError, LeadsError) as error:
        raise _fail(error) from error
    try:
        save_world(world, out)
    except OSError as error:  # a directory or an unwritable path was a traceback
        raise _fail(OSError(f"cannot write {out}: {error.strerror}")) from error
    typer.echo(f"wrote {out}: {len(world.companies)} companies, {len(world.people)} people (seed {seed})")


@world_app.command("leads")
def world_leads(
    world_file: Annotated[Path, typer.Argument(metavar="WORLD", help="World file written by `world generate`.")],
    out: Annotated[Path, typer.Option("--out", help="Lead CSV to write.")],
    truth: Annotated[Path, typer.Option("--truth", help="Truth JSON to write (row -> person and true values).")],
    fraction_missing: Annotated[
        str, typer.Option(help="Share of rows to blank per field, e.g. email=0.5,phone=0.6,linkedin=0.5.")
    ] = "",
    seed: Annotated[int, typer.Option(help="Random seed for row order, formats and blanking.")] = 0,
) -> None:
    """Write every person of WORLD as a lead row, some fields blanked, plus the truth to score discovery."""
    from leads_pipeline.sandbox.generate import parse_fractions, write_leads_csv
    from leads_pipeline.sandbox.world import load_world

    for path in (out, truth):  # checked first: the CSV was written before the truth file failed, half the pair
        if path.is_dir():
            raise _fail(OSError(f"cannot write {path}: Is a directory"))
    try:
        world = load_world(world_file)
        rows = write_leads_csv(world, out, truth, parse_fractions(fraction_missing), seed)
    except (ValueError, LeadsError) as error:
        raise _fail(error) from error
    except OSError as error:  # a directory or an unwritable path for --out or --truth was a traceback
        raise _fail(OSError(f"cannot write {error.filename}: {error.strerror}")) from error
    typer.echo(f"wrote {out} ({rows} leads) and {truth}")


@app.command("up")
def up(
    world_file: Annotated[
        Path | None,
        typer.Option("--world", help="World file; default: a generated 50-company world, seed 7."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Without --world: copy of shared/data to generate from (default: beside the repo)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address for DNS and HTTP.")] = "127.0.0.1",
    dns_port: Annotated[int, typer.Option(min=0, max=65535, help="DNS port, UDP and TCP (0: any free port).")] = 5353,
    smtp_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of every mail host, 127.0.0.2-6 (0: any free).")
    ] = 2525,
    http_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of the HTTP emulators (0: any free port).")
    ] = 8765,
    salesforce_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="HTTPS port of the Salesforce emulator, which its client reaches only so (0: any)."
        ),
    ] = 8766,
) -> None:
    """Run the sandbox until Ctrl-C; print the settings that point clients at it as `export` lines."""
    from leads_pipeline.sandbox.generate import generate_world
    from leads_pipeline.sandbox.http.tls import serve_tls
    from leads_pipeline.sandbox.server import Sandbox
    from leads_pipeline.sandbox.world import load_world

    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as error:  # the DNS server's parser failed on it: a traceback
        raise _fail(OSError(f"--host {host!r}: not an address or host name ({error})")) from error
    try:
        world = load_world(world_file) if world_file else generate_world(50, 500, 7, data_dir)
        sandbox = Sandbox.start(world, host, dns_port, smtp_port, http_port)
    except (ValueError, OSError, LeadsError) as error:
        raise _fail(error) from error
    tls = tempfile.TemporaryDirectory(prefix="leads-sandbox-tls-")  # the throwaway CA, gone with the sandbox
    try:
        assert sandbox.http_app is not None
        salesforce = serve_tls(sandbox.http_app, "salesforce", Path(tls.name), host, salesforce_port)
    except OSError as error:
        sandbox.stop()
        tls.cleanup()
        message = f"cannot serve https on {host}:{salesforce_port}: {error}; pick another --salesforce-port"
        raise _fail(OSError(message)) from error
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with sandbox, tls:
        try:
            for key, value in {**sandbox.env(), **salesforce.salesforce_env()}.items():
                typer.echo(f"export {key}={shlex.quote(value)}")
            if world_file:
                typer.echo(f"export LEADS_SANDBOX_WORLD={shlex.quote(str(world_file.resolve()))}")
            typer.echo(
                f"sandbox up: {len(world.companies)} companies, {len(world.people)} people; Ctrl-C stops it",
                err=True,
            )
            sys.stdout.flush()
            while not stopped.wait(0.5):
                pass
        finally:
            salesforce.stop()
    typer.echo("sandbox stopped", err=True)


@app.command("tour")
def tour(
    data_dir: DemoDataDir = None,
) -> None:
    """Start the sandbox on the demo world and call every provider's real client once, over the wire; each
    answer is checked against the world. Exit code 1 when a call fails or disagrees with the world."""
    from leads_pipeline.sandbox.demo_world import demo_world
    from leads_pipeline.sandbox.server import Sandbox
    from leads_pipeline.sandbox.tour import run_tour

    try:
        world = demo_world(data_dir)
        with Sandbox.start(world) as sandbox:
            steps = run_tour(sandbox, world)
    except (ValueError, OSError, LeadsError) as error:
        raise _fail(error) from error
    # columns as wide as their longest value: fixed widths pushed the rest of a longer line ("Twilio Lookup", a
    # search call) out of its column
    widths = [
        max(len(text) for text in column)
        for column in zip(*((s.provider, s.call, s.answer) for s in steps), strict=True)
    ]
    for step in steps:
        verdict = "matches the world" if step.ok else f"WRONG: {step.detail}"
        cells = (step.provider, step.call, step.answer)
        typer.echo(" ".join(text.ljust(width) for text, width in zip(cells, widths, strict=True)) + f" {verdict}")
    if not all(step.ok for step in steps):
        raise typer.Exit(code=1)
