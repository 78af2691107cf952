"""The ``mousereg`` command line: parse, call the library, print. Nothing else.

Every command is a thin wrapper over a library function of the same name. Heavy modules are
imported inside the commands so that ``mousereg --help`` starts fast. Errors a user can cause
(:class:`mousereg.errors.MouseregError`) end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
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


# ---- fiducials and registration -----------------------------------------------------------------
@main.group()
def fiducials() -> None:
    """Marker holes of the animal holder: detection."""


@fiducials.command("detect")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="markers.json (a Slicer .mrk.json is written beside it).",
)
@click.option(
    "--modality",
    type=click.Choice(["CT", "MR"], case_sensitive=False),
    default=None,
    help="Scan modality (guessed from the values when not given).",
)
def fiducials_detect(images: tuple[Path, ...], output: Path, modality: str | None) -> None:
    """Find the marker holes in IMAGE (several IMAGEs = channels of one scan, e.g. water fat)."""
    from mousereg.fiducials.files import detect_files

    _print_json(detect_files(images, output, modality=modality))


@main.command()
@click.option(
    "--fixed",
    "fixed",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Fixed scan (the MRI); repeat for channels (water, fat).",
)
@click.option(
    "--moving",
    "moving",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Moving scan (the CT); repeat for channels.",
)
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["fiducial", "rigid", "affine", "deformable"]),
    default="deformable",
    show_default=True,
)
@click.option(
    "--backend",
    type=click.Choice(["elastix", "ants"]),
    default="elastix",
    show_default=True,
    help="Intensity registration backend.",
)
@click.option(
    "--fixed-points",
    type=click.Path(path_type=Path),
    default=None,
    help="Markers of the fixed scan by hand (CSV x,y,z LPS mm, or Slicer .mrk.json).",
)
@click.option(
    "--moving-points",
    type=click.Path(path_type=Path),
    default=None,
    help="Markers of the moving scan by hand (CSV or Slicer .mrk.json).",
)
@click.option("--similarity", is_flag=True, help="Fit an isotropic scale in the fiducial stage.")
@click.option(
    "--max-fre",
    type=float,
    default=0.5,
    show_default=True,
    help="Refuse a marker fit with a larger RMS residual (mm); a residual above 2.5x the holes' "
    "localisation error (at least 0.15 mm) is refused too (two animals).",
)
@click.option(
    "--holder",
    default=None,
    help="Holder profile (name in pipelines/holders/ or a .yaml): match holes to its design.",
)
def register(
    fixed: tuple[Path, ...],
    moving: tuple[Path, ...],
    outdir: Path,
    mode: str,
    backend: str,
    fixed_points: Path | None,
    moving_points: Path | None,
    similarity: bool,
    max_fre: float,
    holder: str | None,
) -> None:
    """Register MOVING onto FIXED; writes transform.h5 (fixed -> moving), inverse.h5,
    report.json and the markers of both scans into OUTDIR."""
    from mousereg.registration.pipeline import register_files

    report = register_files(
        fixed,
        moving,
        outdir,
        mode=mode,
        backend=backend,
        fixed_points=fixed_points,
        moving_points=moving_points,
        similarity=similarity,
        max_fre_mm=max_fre,
        holder=holder,
    )
    fid = report.get("fiducial", {})
    click.echo(
        json.dumps(
            {
                "outdir": str(outdir),
                "holes_found": fid.get("holes_found"),
                "matched_pairs": fid.get("matched_pairs"),
                "fre_rms_mm": fid.get("fre_rms_mm"),
                "predicted_tre": fid.get("predicted_tre"),
                "seconds_total": report.get("seconds_total"),
            },
            indent=2,
        )
    )


# ---- batch: run ------------------------------------------------------------------------------
EXIT_JOBS_FAILED = 1


@main.command()
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option(
    "--manifest",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV manifest or ISA-Tab study (folder or i_*.txt).",
)
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path))
@click.option(
    "--cluster",
    default="local",
    show_default=True,
    help="local, slurm, pbs (profiles in pipelines/clusters/), a profile YAML, or tcp://HOST:PORT.",
)
@click.option("--workers", type=int, default=None, help="Workers (SLURM/PBS: jobs).")
@click.option("--threads", type=int, default=None, help="ITK/elastix/ANTs threads per job.")
@click.option("--retries", type=int, default=None, help="Retries of a job (default: the spec's).")
def run(
    pipeline: Path,
    manifest: Path,
    outdir: Path,
    cluster: str,
    workers: int | None,
    threads: int | None,
    retries: int | None,
) -> None:
    """Run PIPELINE (pipelines/*.yaml) over every row of MANIFEST on a Dask cluster.

    Re-running into the same OUTDIR skips the jobs that are done and redoes what changed. Exit
    status 1 when any job failed, 2 for errors in the inputs (manifest, pipeline, profile).
    """
    from mousereg.batch import run_pipeline

    summary = run_pipeline(
        pipeline,
        manifest,
        outdir,
        cluster=cluster,
        workers=workers,
        threads=threads,
        retries=retries,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(summary.table())
    click.echo(f"summary: {summary.outdir / 'summary.tsv'}")
    if not summary.ok:
        sys.exit(EXIT_JOBS_FAILED)


# ---- labels: propagate, evaluate ---------------------------------------------------------------
@main.command()
@click.argument("labels", type=click.Path(path_type=Path))
@click.option(
    "--transform",
    "transform",
    required=True,
    type=click.Path(path_type=Path),
    help="ITK transform file (fixed -> moving), e.g. transform.h5 from `mousereg register`.",
)
@click.option(
    "--reference", required=True, type=click.Path(path_type=Path), help="Grid to put labels on."
)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--inverse", is_flag=True, help="Use the inverse transform (LABELS on the fixed grid)."
)
@click.option(
    "--method",
    type=click.Choice(["label", "nearest"]),
    default="label",
    show_default=True,
    help="label: per-label linear + arg-max (smooth boundaries); nearest: nearest neighbour.",
)
@click.option("--table", type=click.Path(path_type=Path), default=None, help="Label table.")
@click.option(
    "--fov",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the mask of reference voxels that LABELS' grid covers.",
)
def propagate(
    labels: Path,
    transform: Path,
    reference: Path,
    output: Path,
    inverse: bool,
    method: str,
    table: Path | None,
    fov: Path | None,
) -> None:
    """Carry the label map LABELS onto the grid of --reference through --transform."""
    from mousereg.propagate import propagate_file

    out = propagate_file(
        labels, transform, reference, output, inverse=inverse, method=method, table=table, fov=fov
    )
    click.echo(f"wrote {output} ({'x'.join(map(str, out.size))}, labels {out.labels or 'none'})")


@main.command()
@click.argument("pred", type=click.Path(path_type=Path))
@click.argument("truth", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--tau", type=float, default=0.5, show_default=True, help="NSD tolerance, mm.")
@click.option("--table", type=click.Path(path_type=Path), default=None, help="Label table.")
@click.option(
    "--roi",
    type=click.Path(path_type=Path),
    default=None,
    help="Compare only inside this mask (e.g. the --fov mask of `mousereg propagate`).",
)
def evaluate(
    pred: Path, truth: Path, output: Path, tau: float, table: Path | None, roi: Path | None
) -> None:
    """Dice, Jaccard, ASSD, HD95, NSD and volume difference per label of PRED against TRUTH."""
    from mousereg.metrics import evaluate_file

    doc = evaluate_file(pred, truth, output, tau_mm=tau, table=table, roi=roi)
    for row in doc["labels"]:
        hd95 = "n/a" if row["hd95_mm"] is None else f"{row['hd95_mm']:.3f} mm"
        click.echo(f"{row['name']:>14}  dice {row['dice']:.3f}  hd95 {hd95}")
    mean = doc["mean"]["dice"]
    click.echo(f"mean dice {'n/a' if mean is None else f'{mean:.3f}'}; wrote {output}")


# ---- PET mu-maps: mumap ct, mumap mr, mumap compare --------------------------------------------
@main.group()
def mumap() -> None:
    """PET attenuation (mu) maps at 511 keV, in cm^-1, from CT or Dixon MRI, and their errors."""


@mumap.command("ct")
@click.argument("ct", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--kvp", type=float, default=55.0, show_default=True, help="CT tube voltage (kV).")
@click.option(
    "--model",
    type=click.Choice(["materials", "bilinear"]),
    default="materials",
    show_default=True,
    help="HU->mu scaling (docs/mumap.md).",
)
@click.option("--effective-kev", type=float, default=None, help="Override the beam's energy.")
@click.option(
    "--calibrate",
    default=None,
    help="Two references NAME=VALUE[:MU] (air, water, fat, soft, bone): air=-990,water=4",
)
@click.option("--like", type=click.Path(path_type=Path), default=None, help="PET image grid.")
@click.option("--spacing", type=float, default=None, help="Isotropic output voxel (mm).")
@click.option("--fwhm", type=float, default=0.0, show_default=True, help="PET resolution (mm).")
@click.option("--holder", type=click.Choice(["keep", "remove"]), default="keep", show_default=True)
def mumap_ct(
    ct: Path,
    output: Path,
    kvp: float,
    model: str,
    effective_kev: float | None,
    calibrate: str | None,
    like: Path | None,
    spacing: float | None,
    fwhm: float,
    holder: str,
) -> None:
    """mu511 map of CT (Hounsfield units) on the CT grid or a PET grid."""
    from mousereg.attenuation.commands import mumap_ct as run_mumap_ct

    meta = run_mumap_ct(
        ct,
        output,
        kvp=kvp,
        model=model,
        effective_kev=effective_kev,
        calibration=calibrate,
        like=like,
        spacing_mm=spacing,
        fwhm_mm=fwhm,
        holder=holder,
    )
    for warning in meta["warnings"]:
        click.echo(f"mousereg: warning: {warning}", err=True)
    click.echo(f"wrote {output} and {meta['sidecar']}")


@mumap.command("mr")
@click.option("--water", required=True, type=click.Path(path_type=Path))
@click.option("--fat", default=None, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--method",
    type=click.Choice(["dixon", "atlas", "hybrid"]),
    default="dixon",
    show_default=True,
)
@click.option("--atlas", type=click.Path(path_type=Path), default=None, help="Atlas folder.")
@click.option(
    "--transform",
    type=click.Path(path_type=Path),
    default=None,
    help="Subject->atlas transform (.h5); registered when omitted.",
)
@click.option(
    "--registration",
    type=click.Choice(["affine", "deformable"]),
    default="affine",
    show_default=True,
    help="Atlas-to-subject registration when no --transform is given.",
)
@click.option(
    "--values",
    type=click.Choice(["mouse", "martinez-moller"]),
    default="mouse",
    show_default=True,
    help="Dixon class mu values.",
)
def mumap_mr(
    water: Path,
    fat: Path | None,
    output: Path,
    method: str,
    atlas: Path | None,
    transform: Path | None,
    registration: str,
    values: str,
) -> None:
    """mu511 map from Dixon water and fat images (dixon, atlas pseudo-CT or hybrid)."""
    from mousereg.attenuation.commands import mumap_mr as run_mumap_mr

    meta = run_mumap_mr(
        water,
        fat,
        output,
        method=method,
        atlas=atlas,
        transform=transform,
        registration=registration,
        values=values,
    )
    click.echo(f"wrote {output} and {meta['sidecar']}")


@mumap.command("compare")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--labels", type=click.Path(path_type=Path), default=None, help="Organ labels.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--axis", default="auto", show_default=True, help="Scanner axis: auto, z, y, x.")
@click.option("--angles", type=int, default=60, show_default=True, help="Sinogram angles.")
def mumap_compare(
    a: Path, b: Path, labels: Path | None, output: Path, axis: str, angles: int
) -> None:
    """Errors of mu-map A against reference B: per tissue/organ and of the ACFs."""
    from mousereg.attenuation.commands import mumap_compare as run_mumap_compare

    doc = run_mumap_compare(a, b, output, labels=labels, axis=axis, n_angles=angles)
    for warning in doc["warnings"]:
        click.echo(f"mousereg: warning: {warning}", err=True)
    acf = doc["acf"]
    click.echo(f"{'tissue':<12} {'voxels':>8} {'MAE cm-1':>9} {'bias %':>7} {'|rel| %':>7}")
    for name, row in doc["tissues"].items():
        click.echo(
            f"{name:<12} {row['voxels']:>8} {row['mean_abs_error']:>9.5f} "
            f"{100 * row['mean_relative_error']:>7.2f} {100 * row['mean_abs_relative_error']:>7.2f}"
        )
    for part in ("body", "near_bone"):
        s = acf[part]
        click.echo(
            f"ACF |A/B-1| {part}: mean {100 * s['mean']:.2f} %, p95 {100 * s['p95']:.2f} % "
            f"({s['lors']} LORs)"
        )
    click.echo(f"wrote {output}")


# ---- atlas: build, segment, info, validate ------------------------------------------------------
@main.group()
def atlas() -> None:
    """Multimodal mouse atlases: build from a manifest, segment new mice, inspect, validate."""


def _where_to_run(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--cluster`` and ``--workers`` options of the atlas commands."""
    command = click.option(
        "--workers",
        type=int,
        default=1,
        show_default=True,
        help="Local worker processes (1: in this process).",
    )(command)
    return click.option(
        "--cluster", default=None, help="Dask scheduler address (tcp://HOST:PORT)."
    )(command)


@atlas.command("build")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option(
    "-o", "--outdir", required=True, type=click.Path(path_type=Path), help="Atlas folder."
)
@click.option("--iterations", type=int, default=4, show_default=True, help="Template iterations.")
@click.option("--spacing", type=float, default=0.4, show_default=True, help="Template voxel (mm).")
@click.option(
    "--registration-spacing",
    type=float,
    default=0.8,
    show_default=True,
    help="Grid (mm) the subject-to-template registrations run on.",
)
@click.option("--gradient-step", type=float, default=0.25, show_default=True)
@click.option("--no-sharpen", is_flag=True, help="Do not sharpen the MR templates.")
@_where_to_run
@click.option("--name", default="", help="Atlas name (default: the folder name).")
@click.option("--strain", default="", help="Mouse strain recorded in atlas.json.")
@click.option("--restart", is_flag=True, help="Ignore a stopped build's state and start over.")
def atlas_build(
    manifest: Path,
    outdir: Path,
    iterations: int,
    spacing: float,
    registration_spacing: float,
    gradient_step: float,
    no_sharpen: bool,
    cluster: str | None,
    workers: int,
    name: str,
    strain: str,
    restart: bool,
) -> None:
    """Build an unbiased multimodal atlas from the subjects of MANIFEST (resumable)."""
    from mousereg.atlas import BuildParameters, build_atlas_from_manifest

    params = BuildParameters(
        iterations=iterations,
        spacing=spacing,
        registration_spacing=registration_spacing,
        gradient_step=gradient_step,
        sharpen=not no_sharpen,
    )
    doc = build_atlas_from_manifest(
        manifest,
        outdir,
        params,
        name=name,
        strain=strain,
        cluster=cluster,
        workers=workers,
        resume=not restart,
    )
    for e in doc["excluded"]:
        click.echo(f"warning: subject {e['id']} left out: {e['reason']}", err=True)
    click.echo(
        f"wrote {outdir} ({len(doc['subjects'])} subjects, {len(doc['history'])} iterations)"
    )


@atlas.command("segment")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--atlas", "atlas_dir", required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Label map.")
@click.option("--multi", is_flag=True, help="Multi-atlas: register every atlas subject and fuse.")
@click.option(
    "--fusion",
    type=click.Choice(["weighted", "joint", "majority"]),
    default="weighted",
    show_default=True,
    help="Label fusion for --multi.",
)
@_where_to_run
def atlas_segment(
    images: tuple[Path, ...],
    atlas_dir: Path,
    output: Path,
    multi: bool,
    fusion: str,
    cluster: str | None,
    workers: int,
) -> None:
    """Segment a Dixon MRI (IMAGES = water fat) with the atlas; write the label map to OUTPUT."""
    from mousereg.atlas import segment

    segment(
        atlas_dir,
        list(images),
        output,
        multi=multi,
        fusion=fusion,
        cluster=cluster,
        workers=workers,
    )
    click.echo(f"wrote {output}")


@atlas.command("info")
@click.argument("atlas_dir", type=click.Path(path_type=Path))
def atlas_info(atlas_dir: Path) -> None:
    """Print an atlas's name, grid, channels, labels, subjects and build history."""
    from mousereg.atlas import atlas_summary

    _print_json(atlas_summary(atlas_dir))


@atlas.command("validate")
@click.argument("atlas_dir", type=click.Path(path_type=Path))
def atlas_validate(atlas_dir: Path) -> None:
    """Check an atlas folder (schema, files, checksums, grids, values); exit 2 when invalid."""
    from mousereg.atlas import validate_atlas

    validate_atlas(atlas_dir)
    click.echo(f"{atlas_dir}: valid")


# ---- phantom and demo ---------------------------------------------------------------------------
@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--subjects", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option(
    "--resolution",
    type=click.Choice(["full", "test"]),
    default="full",
    show_default=True,
    help="full: CT 140 um, MRI 384x264x44; test: about 1/8 of the voxels.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["nifti", "zarr"]), default="nifti", show_default=True
)
def phantom(outdir: Path, subjects: int, seed: int, resolution: str, fmt: str) -> None:
    """Write a synthetic paired CT/MRI study with ground truth and OUTDIR/manifest.csv."""
    from mousereg.phantom import write_study

    manifest = write_study(outdir, subjects=subjects, seed=seed, resolution=resolution, fmt=fmt)
    click.echo(f"wrote {manifest}")


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path), default="demo-output")
def demo(outdir: Path) -> None:
    """Run every stage on a small synthetic study (2 workers); print the ground-truth scores."""
    from mousereg.demo import run_demo

    run_demo(outdir, say=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
