"""`cityops map ...`: import areas and points, seed the demo's map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The map (一张图): imports and demo data.", no_args_is_help=True)
Crs = Annotated[str, typer.Option(help="the file's coordinate system: CGCS2000, WGS84, "
                                       "GCJ-02 or BD-09 (converted on import)")]


def _connect():
    import psycopg

    from cityops.settings import load_settings

    return psycopg.connect(load_settings().database_url.get_secret_value(), autocommit=True)


def _show(report: dict) -> None:
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    if report.get("refused"):
        raise typer.Exit(1)


@app.command("import-areas")
def import_areas_cmd(
    path: Path, kind: Annotated[str, typer.Option(help="county, town, community, grid or "
                                                      "responsibility")],
    crs: Crs = "CGCS2000",
    layer: Annotated[str, typer.Option(help="the import's name (default: the file's)")] = "",
    repair: Annotated[bool, typer.Option(help="repair invalid polygons with ST_MakeValid "
                                              "(reported) instead of refusing them")] = False,
) -> None:
    """Areas from a GeoJSON FeatureCollection or a Shapefile (.shp; fields code, name,
    department)."""
    from spatial.importer import import_areas, read_area_file

    features = read_area_file(path)
    with _connect() as conn:
        report = import_areas(conn, features, kind=kind, layer=layer or path.stem, crs=crs,
                              repair=repair)
    _show(report.as_dict())


@app.command("import-points")
def import_points_cmd(
    path: Path, table: Annotated[str, typer.Option(help="devices or sites")],
    crs: Crs = "CGCS2000", layer: str = "",
) -> None:
    """Place devices or sites from a CSV with columns id, lon, lat."""
    from spatial.importer import import_points, read_point_rows

    rows = read_point_rows(path)
    with _connect() as conn:
        report = import_points(conn, rows, table=table, layer=layer or path.stem, crs=crs)
    _show(report.as_dict())


@app.command("import-facilities")
def import_facilities_cmd(
    path: Path, kind: Annotated[str, typer.Option(help="camera, hydrant, shelter... (a row's "
                                                      "own `kind` column wins)")],
    crs: Crs = "CGCS2000", layer: str = "",
) -> None:
    """Cameras or facilities from a CSV with columns id, lon, lat [, name, code, department,
    kind], upserted by id."""
    from spatial.facilities import import_facilities
    from spatial.importer import read_point_rows

    rows = read_point_rows(path)
    with _connect() as conn:
        report = import_facilities(conn, rows, kind=kind, layer=layer or path.stem, crs=crs)
    _show(report.as_dict())


@app.command("import-gb28181")
def import_gb28181_cmd(
    path: Path, crs: Crs = "WGS84", layer: str = "",
    department: Annotated[str | None, typer.Option(help="the cameras' department")] = None,
) -> None:
    """Cameras from a GB/T 28181 platform's Catalog answer (XML, one or several bodies),
    upserted by DeviceID with the platform's ON/OFF status (docs/video.md)."""
    from spatial.gb28181 import import_catalog

    with _connect() as conn:
        report = import_catalog(conn, path.read_bytes(), department=department,
                                layer=layer or path.stem, crs=crs)
    _show(report)


@app.command("seed-demo")
def seed_demo_cmd(events: Annotated[int, typer.Option(min=0, max=100_000)] = 300) -> None:
    """濉溪县, its towns and grid cells, the devices placed, a month of events (the demo)."""
    from spatial.demo import seed_demo

    with _connect() as conn:
        typer.echo(json.dumps(seed_demo(conn, events), ensure_ascii=False))
