"""``kilnworks serve``: run the API and the dashboard; ``kilnworks serve create-token``.

    kilnworks serve [--store URL] [--db URL] [--plant plant.toml] [--host H] [--port P]
    kilnworks serve create-token --role admin|manager|engineer|town [--enterprise E] [--name N]
                                 [--db URL] [--plant plant.toml]

The token is printed once, on stdout; only its hash is stored.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from api.auth import ENTERPRISE_ROLES, Role, issue_token
from api.metadata.store import MetadataStore
from api.settings import Settings
from core.config import ConfigError
from core.plant import load_plant
from core.reading import now_ns


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        help="metadata database URL (SQLAlchemy: sqlite:///..., postgresql+psycopg://...); "
        f"default {Settings.model_fields['db_url'].default}",
    )
    p.add_argument("--plant", help="plant model TOML (default: the built-in Shangbu model)")


def _settings(args: argparse.Namespace) -> Settings:
    given = {
        "store_url": getattr(args, "store", None),
        "db_url": args.db,
        "plant_path": args.plant,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return Settings(**{k: v for k, v in given.items() if v is not None})


def _ensure_sqlite_dir(url: str) -> None:
    # sqlite:///relative/path.db or sqlite:////abs/path.db: create the directory, not the file.
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def create_token(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="kilnworks serve create-token")
    _common(p)
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--enterprise", help="the enterprise of a manager or engineer")
    p.add_argument("--name", default="", help="who or what holds the token")
    args = p.parse_args(list(argv))
    settings = _settings(args)
    role = Role(args.role)
    if role in ENTERPRISE_ROLES:
        plant = load_plant(settings.plant_path)
        try:
            plant.enterprise(args.enterprise or "")
        except KeyError:
            ids = ", ".join(e.id for e in plant.enterprises)
            print(
                f"kilnworks serve create-token: --enterprise must be one of: {ids}", file=sys.stderr
            )
            return 2
    _ensure_sqlite_dir(settings.db_url)
    meta = MetadataStore.open(settings.db_url)
    try:
        token, _ = issue_token(
            meta,
            name=args.name or f"{role} token",
            role=role,
            enterprise=args.enterprise,
            now_ns=now_ns(),
        )
    except ValueError as exc:
        print(f"kilnworks serve create-token: {exc}", file=sys.stderr)
        return 2
    finally:
        meta.close()
    print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["create-token"]:
        try:
            return create_token(args_in[1:])
        except (ConfigError, ValidationError) as exc:
            print(f"kilnworks serve: {exc}", file=sys.stderr)
            return 2
    p = argparse.ArgumentParser(
        prog="kilnworks serve",
        description="Serve the kilnworks API (/api/v1) and the dashboard (/). "
        "Subcommand: create-token --role admin (prints a token once).",
    )
    p.add_argument(
        "--store",
        help="telemetry store URL (sqlite:///..., influxdb://host:port/db); "
        f"default {Settings.model_fields['store_url'].default}",
    )
    _common(p)
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8080)")
    p.add_argument("--log-level", default="info")
    args = p.parse_args(args_in)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = _settings(args)
        _ensure_sqlite_dir(settings.db_url)
        _ensure_sqlite_dir(settings.store_url)
        from api.app import create_app

        app = create_app(settings)
    except (ConfigError, ValidationError) as exc:
        print(f"kilnworks serve: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        loop="auto",
        http="auto",
    )
    return 0
