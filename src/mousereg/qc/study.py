"""The study report: one static, self-contained HTML file (figures embedded as base64 PNG).

Sections, each present when the study has the data: jobs (done/failed with reasons), registration
(holes found, hole residuals, FRE, predicted TRE, measured error against the phantom truth),
overlays per pair, label overlap (Dice per organ table and box plots, surface distances), µ-maps
(errors against the truth per map), the atlas, and timings. Its input is the list of job entries
the batch runner hands to the ``study-report`` job kind.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mousereg.io.atomic import write_text
from mousereg.qc import study_figures as figs

OVERLAY = "overlay.png"
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3} td.l,th.l{text-align:left}
.failed{color:#b00} .blocked{color:#a60} .ok{color:#070}
img{max-width:100%} h2{border-bottom:1px solid #ddd;padding-bottom:3px}
"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One job of the study as the report sees it."""

    job_id: str
    stage: str
    kind: str
    subject: str
    status: str
    seconds: float
    reason: str
    folder: Path
    result: dict[str, Any]


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return "–" if not np.isfinite(x) else f"{x:.{nd}f}"
    return html.escape(str(x))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    th = "".join(
        f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="l">{_fmt(v)}</td>' if i < left else f"<td>{_fmt(v)}</td>"
            for i, v in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _jobs_section(entries: Sequence[Entry]) -> str:
    counts: dict[str, dict[str, int]] = {}
    for e in entries:
        counts.setdefault(e.stage, {}).setdefault(e.status, 0)
        counts[e.stage][e.status] += 1
    statuses = ("done", "skipped", "failed", "blocked")
    rows = [[s, *[c.get(k, 0) for k in statuses]] for s, c in counts.items()]
    out = ["<h2>Jobs</h2>", _table(["stage", *statuses], rows)]
    bad = [e for e in entries if e.status not in ("done", "skipped")]
    if bad:
        out.append("<p>Jobs that did not finish:</p><ul>")
        out += [
            f'<li class="{e.status}"><b>{html.escape(e.job_id)}</b> ({e.status}): '
            f"{html.escape(e.reason)}</li>"
            for e in bad
        ]
        out.append("</ul>")
    return "\n".join(out)


def _registration_section(entries: Sequence[Entry]) -> str:
    regs = [e for e in entries if e.kind == "register-pair" and e.result]
    if not regs:
        return ""
    rows, residuals, predicted = [], {}, {}
    for e in regs:
        fid = e.result.get("fiducial", {})
        holes = fid.get("holes_found") or {}
        pred = (fid.get("predicted_tre") or {}).get("mean_over_body_mm")
        truth = fid.get("truth") or {}
        ev = e.result.get("evaluation", {}).get("transform_error_vs_truth", {})
        dice = e.result.get("evaluation", {}).get("ct_labels_in_mr_vs_mr_labels", {})
        rows.append(
            [
                e.subject,
                holes.get("fixed"),
                holes.get("moving"),
                fid.get("matched_pairs"),
                fid.get("fre_rms_mm"),
                pred,
                truth.get("measured_tre_mean_mm"),
                ev.get("mean_mm"),
                ev.get("p95_mm"),
                (dice.get("mean") or {}).get("dice"),
            ]
        )
        residuals[e.subject] = _pair_residuals(e.folder)
        predicted[e.subject] = pred
    header = [
        "subject",
        "holes MRI",
        "holes CT",
        "pairs",
        "FRE rms mm",
        "pred. TRE mm",
        "fiducial TRE vs truth mm",
        "final error vs truth mean mm",
        "p95 mm",
        "mean Dice",
    ]
    parts = [
        "<h2>Registration</h2>",
        "<p>Fiducial fit through the holder's marker holes, then the intensity stage of the "
        "pipeline's mode. Predicted TRE: Fitzpatrick &amp; West 1998 over the MRI body. "
        "Errors vs truth: distance between where the estimated and the phantom's true transform "
        "send MRI organ voxels.</p>",
        _table(header, rows),
    ]
    if any(residuals.values()):
        parts.append(_img(figs.residuals_png(residuals, predicted), "hole residuals"))
    return "\n".join(parts)


def _pair_residuals(folder: Path) -> list[float]:
    import json

    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return []
    pairs = report.get("fiducial", {}).get("pairs", [])
    return [float(p["residual_mm"]) for p in pairs if p.get("used") and "residual_mm" in p]


def _overlap_section(entries: Sequence[Entry]) -> str:
    regs = [e for e in entries if e.kind == "register-pair" and e.result]
    per_organ: dict[str, list[float]] = {}
    rows = []
    organs: list[str] = []
    table: dict[str, dict[str, float]] = {}
    for e in regs:
        doc = e.result.get("evaluation", {}).get("ct_labels_in_mr_vs_mr_labels")
        if not doc:
            continue
        table[e.subject] = {}
        for lab in doc.get("labels", []):
            if not lab.get("in_truth"):
                continue
            name = lab["name"]
            if name not in organs:
                organs.append(name)
            table[e.subject][name] = lab["dice"]
            per_organ.setdefault(name, []).append(lab["dice"])
        mean = doc.get("mean", {})
        table[e.subject]["_assd"] = mean.get("assd_mm")
        table[e.subject]["_hd95"] = mean.get("hd95_mm")
    if not table:
        return ""
    for subject, d in table.items():
        rows.append([subject, *[d.get(o) for o in organs], d.get("_assd"), d.get("_hd95")])
    return "\n".join(
        [
            "<h2>Label overlap (CT labels carried onto the MRI vs the MRI's labels)</h2>",
            "<p>Dice per organ; ASSD and HD95 averaged over organs (mousereg.metrics "
            "conventions: pooled ASSD, max of directed 95th percentiles).</p>",
            _table(["subject", *organs, "ASSD mm", "HD95 mm"], rows),
            _img(figs.box_png(per_organ, "Dice", "Dice per organ across subjects"), "Dice"),
        ]
    )


def _mumap_section(entries: Sequence[Entry]) -> str:
    mus = [e for e in entries if e.kind == "mumap" and e.result]
    rows = []
    groups: dict[str, list[float]] = {}
    for e in mus:
        for name, ev in e.result.get("evaluation_vs_truth", {}).items():
            rows.append(
                [
                    e.subject,
                    name,
                    ev.get("body_mean_abs_error_cm1"),
                    100 * ev["body_mean_relative_error"],
                    100 * ev["body_mean_abs_relative_error"],
                    100 * ev["acf_error_mean"],
                    100 * ev["acf_error_p95"],
                ]
            )
            groups.setdefault(name, []).append(100 * ev["acf_error_mean"])
    if not rows:
        return ""
    header = [
        "subject",
        "map",
        "body MAE cm⁻¹",
        "bias %",
        "mean |rel. error| %",
        "ACF error mean %",
        "ACF error p95 %",
    ]
    return "\n".join(
        [
            "<h2>µ-maps at 511 keV (vs the phantom's true µ)</h2>",
            "<p>mu_ct: from the CT on the CT grid; mu_mr: Dixon classes on the MRI grid; "
            "mu_ct_in_mr: the CT map carried onto the MRI through the registration.</p>",
            _table(header, rows, left=2),
            _img(figs.box_png(groups, "ACF error %", "mean ACF error per map"), "ACF errors"),
        ]
    )


def _atlas_section(entries: Sequence[Entry]) -> str:
    atl = [e for e in entries if e.kind == "build-atlas" and e.result]
    if not atl:
        return ""
    r = atl[0].result
    rows = [[k, v] for k, v in r.items() if isinstance(v, str | int | float)]
    rows += [
        [k, ", ".join(map(str, v)) or "–"]
        for k, v in r.items()
        if isinstance(v, list) and not (v and isinstance(v[0], dict))
    ]
    parts = ["<h2>Atlas</h2>", _table(["field", "value"], rows)]
    history = r.get("history") or []
    if history and isinstance(history[0], dict):
        keys = list(history[0])
        parts += [
            "<p>Template iterations:</p>",
            _table(keys, [[h.get(k) for k in keys] for h in history]),
        ]
    return "\n".join(parts)


def _overlays_section(entries: Sequence[Entry], limit: int) -> str:
    imgs = []
    for e in entries:
        if e.kind != "register-pair" or not (e.folder / OVERLAY).is_file():
            continue
        imgs.append(_img((e.folder / OVERLAY).read_bytes(), f"overlay {e.subject}"))
        if len(imgs) >= limit:
            break
    return "\n".join(["<h2>Overlays (middle MRI slice)</h2>", *imgs]) if imgs else ""


def _timings_section(entries: Sequence[Entry]) -> str:
    seconds: dict[str, list[float]] = {}
    for e in entries:
        if e.status == "done":
            seconds.setdefault(e.stage, []).append(e.seconds)
    if not seconds:
        return ""
    rows = [
        [s, len(v), float(np.median(v)), float(np.max(v)), float(np.sum(v))]
        for s, v in seconds.items()
    ]
    return "\n".join(
        [
            "<h2>Timings (jobs run in this report's run)</h2>",
            _table(["stage", "jobs", "median s", "max s", "total s"], rows),
            _img(figs.timings_png(seconds), "timings"),
        ]
    )


def write_study_report(
    path: str | os.PathLike[str],
    entries: Sequence[Entry],
    *,
    title: str = "mousereg study report",
    overlays: int = 24,
) -> Path:
    """Write the self-contained HTML report of ``entries`` to ``path`` (atomically)."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subjects = sorted({e.subject for e in entries if e.subject})
    sections = [
        _jobs_section(entries),
        _registration_section(entries),
        _overlap_section(entries),
        _mumap_section(entries),
        _atlas_section(entries),
        _overlays_section(entries, overlays),
        _timings_section(entries),
    ]
    doc = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{len(subjects)} subjects, {len(entries)} jobs; written {when}.</p>",
            *[s for s in sections if s],
            "</body></html>",
        ]
    )
    p = Path(path)
    write_text(p, doc)
    return p
