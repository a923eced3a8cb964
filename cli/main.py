"""`cityops`: one command line for every process of the platform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cityops.errors import PlatformError
from cityops.running import cli_settings as _settings
from cityops.running import run_async as _run_async

app = typer.Typer(help="CityOps: unified city operations platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sim_app = typer.Typer(help="Device simulators.", no_args_is_help=True)
registry_app = typer.Typer(help="Register gateways and devices.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sim_app, name="sim")
app.add_typer(registry_app, name="registry")


def _stack_app() -> typer.Typer:
    from infra.local.cli import app as stack_app

    return stack_app


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the numbered SQL migrations that are missing."""
    from infra.db.migrate import migrate

    settings = _settings()
    applied = migrate(settings.database_url.get_secret_value())
    typer.echo(f"applied {len(applied)} migration(s)")


@sim_app.command("modbus")
def sim_modbus(
    profile: Annotated[str, typer.Option(help="profile name (power/power_meter) or YAML path")],
    port: Annotated[int, typer.Option(help="TCP port")] = 15020,
    host: str = "127.0.0.1",
    count: Annotated[int, typer.Option(help="units 1..count, one device each")] = 1,
    tick_s: Annotated[float, typer.Option(help="how often values move")] = 0.5,
) -> None:
    """Serve a Modbus TCP device simulator for a profile."""
    from edge_agents.profiles import load_profile
    from simulators.modbus_device import serve

    _settings()
    loaded = load_profile(profile)
    if loaded.protocol != "modbus":
        raise PlatformError(f"profile {profile} speaks {loaded.protocol}, not modbus")
    _run_async(serve(loaded, host, port, count, tick_s))




@app.command("agent")
def agent(config: Annotated[Path, typer.Option(help="the gateway's YAML config")]) -> None:
    """Run an edge agent: poll devices, queue readings, publish them over MQTT."""
    from edge_agents.agent import Agent
    from edge_agents.config import load_agent_config

    _settings()
    loaded = load_agent_config(config, check_secrets=True)
    _run_async(Agent(loaded).run())


@app.command("worker")
def worker() -> None:
    """Run cloud and Ansible jobs (start several to share them)."""
    from cloud_control.worker import run

    run(_settings())


@app.command("ingest")
def ingest() -> None:
    """Run an ingest worker (start several to share the load)."""
    from cityops.settings import deployment_of
    from ingestion.consumer import IngestWorker
    from ingestion.priority import lower_worker_priority
    from ingestion.slots import claim_slot

    settings = _settings()
    # before any thread starts: they inherit it (ingestion/priority.py); a worker run inside
    # another process (tests) leaves that process's priority alone
    lower_worker_priority(settings.ingest_nice)
    if settings.ingest_client_id:  # a replacement for a dead host's worker (docs/ingestion.md)
        _run_async(IngestWorker(settings, settings.ingest_client_id).run())
        return
    # the deployment in the client id: two deployments' workers on one host and broker must
    # not take over each other's persistent sessions
    slot = claim_slot(settings.state_dir, f"ingest-{deployment_of(settings)}")
    try:
        _run_async(IngestWorker(settings, slot.client_id).run())
    finally:
        slot.release()


@app.command("api")
def api(host: str | None = None, port: int | None = None) -> None:
    """Serve the HTTP API and the console."""
    import uvicorn

    from api.main import create_app

    settings = _settings()
    from api.http_writes import CoalescingHttpTools  # an answer's head and body in one write
    from api.tls_serve import start_redirect, tls_options

    options = {"host": host or settings.api_host, "port": port or settings.api_port,
               "log_level": settings.log_level.lower(), "access_log": False,
               "http": CoalescingHttpTools}

    options |= tls_options(settings)  # HTTPS when certificates are configured
    start_redirect(settings, options["port"])
    workers = settings.api_workers or default_api_workers()
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:  # each worker process builds its app from the same environment
        uvicorn.run("api.main:create_app_from_env", factory=True, workers=workers, **options)


def default_api_workers() -> int:
    """One API process per core, at most 4 (docs/api.md, "Running several API processes")."""
    import os

    return max(1, min(os.cpu_count() or 1, 4))


@registry_app.command("load")
def registry_load(config: Path) -> None:
    """Register the gateway, devices and points named in an agent config."""
    from api.services.registry import register_agent_config
    from edge_agents.config import load_agent_config

    settings = _settings()
    n = register_agent_config(settings.database_url.get_secret_value(), load_agent_config(config))
    typer.echo(f"registered {n} device(s)")


@app.command("demo")
def demo() -> None:
    """Start the stack, simulated devices, an agent, an ingest worker and the API."""
    from cityops.demo import run_demo

    run_demo()


# (command group, module with its Typer `app`); each needs the server extra
SERVER_GROUPS = [
    ("rules", "ingestion.cli"), ("events", "cityevents.cli"), ("indicators", "indicators.cli"),
    ("notify", "notifications.cli"), ("economy", "datafoundation.economy.cli"),
    ("users", "api.services.users_cli"), ("security", "api.security_check"),
    ("audit", "api.services.audit_cli"), ("gateways", "api.services.gateways_cli"),
    ("map", "spatial.cli"), ("sync", "datafoundation.cli"),
    ("catalogue", "datafoundation.catalogue.cli"), ("governance", "datafoundation.governance.cli"),
    ("quality", "datafoundation.quality.cli"),
]
OUR_PACKAGES = {"cityops", "edge_agents", "ingestion", "api", "cloud_control", "infra",
                "simulators", "datafoundation", "spatial", "cityevents", "indicators",
                "notifications", "cli"}


def _missing_extra(err: ModuleNotFoundError) -> str | None:
    """The missing third-party module when the server extra is not installed (an edge
    gateway installs the core only); None when one of ours is missing (a real bug)."""
    top = (err.name or "").split(".")[0]
    return None if not top or top in OUR_PACKAGES else top


def _unavailable(name: str, module: str) -> typer.Typer:
    """A stand-in group that says what to install instead of a traceback at every start."""
    group = typer.Typer(help=f"(needs the server extra of cityops: {module} is not installed)")

    @group.callback(invoke_without_command=True)
    def explain() -> None:
        raise PlatformError(f"`cityops {name}` needs the server extra: pip install "
                            f"'cityops[server]' (module {module} is not installed)")

    return group


def _register_groups() -> None:
    app.add_typer(_stack_app(), name="stack")
    optional = [(lambda: __import__("simulators.cli").cli.register(sim_app), "sim opcua"),
                (lambda: __import__("infra.backup.cli", fromlist=["register"]).register(app),
                 "backup")]
    optional += [((lambda m=module, n=name: app.add_typer(
        __import__(m, fromlist=["app"]).app, name=n)), name) for name, module in SERVER_GROUPS]
    for register, name in optional:
        try:
            register()
        except ModuleNotFoundError as err:
            missing = _missing_extra(err)
            if missing is None:
                raise
            if " " not in name:
                app.add_typer(_unavailable(name, missing), name=name)


def main() -> None:
    _register_groups()
    try:
        app()
    except PlatformError as err:
        typer.echo(f"error: {err.detail}", err=True)
        raise SystemExit(1) from err
