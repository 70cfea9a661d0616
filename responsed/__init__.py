"""The installed `responsed` command.

In the source tree the project's packages (api, cli, domain, migrations, service, storage, worker)
are top-level folders. The wheel ships them inside this package, under responsed/_app, so that they
never land in site-packages beside other distributions' packages of the same names. Only the
responsed process itself puts that folder on sys.path, first, when its command starts; importing
`responsed` elsewhere changes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent / "_app"  # absent in a source checkout


def main() -> None:
    if APP_DIR.is_dir() and str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    from cli.main import main as run

    run()
