"""The ``mousereg`` command line: parse, call the library, print. Nothing else.

Every command is a thin wrapper over a library function of the same name. Heavy modules are
imported inside the commands so that ``mousereg --help`` starts fast. Errors a user can cause
(:class:`mousereg.errors.MouseregError`) end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mousereg import __version__
from mousereg.errors import MouseregError

EXIT_USER_ERROR = 2


class _Group(click.Group):
    """A click group that turns user errors into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MouseregError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"mousereg: error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)


def _print_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mousereg")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Register paired mouse CT and MRI through the holder's marker holes, carry organ labels
    between them, build multimodal atlases and PET attenuation maps."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# ---- volumes: info, convert ---------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--series", default=None, help="DICOM series UID when a folder holds several.")
def info(path: Path, series: str | None) -> None:
    """Print shape, spacing, origin, direction, dtype, chunks and channels of PATH."""
    from mousereg.io import read_volume

    vol = read_volume(path, series=series)
    _print_json({"path": str(path), **vol.describe()})


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option(
    "--ngff",
    type=click.Choice(["0.4", "0.5"]),
    default="0.4",
    show_default=True,
    help="OME-NGFF version for .zarr outputs.",
)
@click.option("--chunks", type=int, default=None, help="Chunk edge for .zarr outputs (64-128).")
@click.option("--series", default=None, help="DICOM series UID when a folder holds several.")
def convert(src: Path, dst: Path, ngff: str, chunks: int | None, series: str | None) -> None:
    """Convert SRC to DST; the formats follow the suffixes (.zarr = OME-Zarr, folder = DICOM)."""
    from mousereg.io import convert as convert_volume

    convert_volume(src, dst, ngff_version=ngff, chunks=chunks, series=series)
    click.echo(f"wrote {dst}")


if __name__ == "__main__":  # pragma: no cover
    main()
