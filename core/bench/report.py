"""The benchmark's results as text: an aligned two-column table, then the scaling and page
tables."""

from __future__ import annotations

from core.bench.scaling import scaling_table


def format_table(results: dict) -> str:
    """The bench results as an aligned two-column table, then the scaling and page tables."""
    labels = {
        "train_loop_images_per_s": "(a) training loop, images/s",
        "bare_loop_images_per_s": "(a) bare fwd/bwd loop, images/s",
        "loop_efficiency": "(a) ratio loop / bare",
        "cv_seconds_ours": "(b) features CV, ours, s",
        "cv_seconds_obvious": "(b) features CV, obvious, s",
        "cv_speedup": "(b) speed-up obvious / ours",
        "cv_speedup_ceiling": "(b) ceiling (10E + H) / (E + H)",
        "auc_ours": "(b) macro AUC, ours",
        "auc_obvious": "(b) macro AUC, obvious",
        "cv_over_embed_1x": "(c) CV / one embedding pass, 1x (limit 1.0)",
        "cv_over_embed_4x": "(c) CV / one embedding pass, 4x (limit 1.0)",
        "table_traced_peak_mb": "(m) classification_table traced peak, MB",
        "table_process_peak_mb": "(m) classification_table process peak, MB",
    }
    rows = []
    for key, value in results.items():
        if isinstance(value, list | dict):
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        rows.append((labels.get(key, key), text))
    width = max(len(name) for name, _ in rows)
    parts = ["\n".join(f"{name:<{width}}  {text}" for name, text in rows)]
    if results.get("scaling"):
        parts.append("(c) scaling, features CV:\n" + scaling_table(results["scaling"]))
    if results.get("page_scales"):
        parts.append(scales_table(results["page_scales"]))
    return "\n\n".join(parts)


def scales_table(scales: dict) -> str:
    """Every page's first render and rerun at each scale, and the growth from the first scale to
    the last (seconds at the last / seconds at the first)."""
    names = list(scales)
    head = " | ".join(f"{n} first, rerun" for n in names)
    lines = [f"(p) pages, seconds: {head} | growth first, rerun ({names[0]} -> {names[-1]})"]
    cases = ", ".join(f"{n}: {s['cases']} cases" for n, s in scales.items())
    lines.append(f"    ({cases}; an admin signed in, AppTest, a fresh interpreter per page)")
    rows = {}
    for name, scale in scales.items():
        for p in scale["pages"]:
            rows.setdefault(p["page"], {})[name] = p
        a = scale["reader_analysis"]
        rows.setdefault(f"analysis {a['readers']}r", {})[name] = {
            "seconds": a["first_seconds"], "rerun_seconds": a["rerun_seconds"],
            "errors": a["errors"],
        }  # fmt: skip
    for page, by_scale in rows.items():
        cells, errors = [], []
        for name in names:
            p = by_scale.get(name)
            cells.append(
                "   -     -  " if p is None else f"{p['seconds']:5.2f} {p['rerun_seconds']:5.2f}"
            )
            errors += [f"{name}: {e}" for e in (p or {}).get("errors", [])]
        first, last = by_scale.get(names[0]), by_scale.get(names[-1])
        growth = (
            f"{last['seconds'] / first['seconds']:5.1f}x {last['rerun_seconds'] / max(first['rerun_seconds'], 1e-9):5.1f}x"
            if first and last and first["seconds"] > 0
            else ""
        )
        tail = f"  ERRORS: {errors}" if errors else ""
        lines.append(f"  {page:<16} " + " | ".join(cells) + f" | {growth}{tail}")
    lines.append("  first and rerun: a restarted server, reading saved tables back; from nothing:")
    for name, scale in scales.items():
        cold = ", ".join(
            f"{p['page']} {p['cold_seconds']:.2f}" for p in scale["pages"] if "cold_seconds" in p
        )
        lines.append(f"    {name}: {cold}")
        lines.append(f"    {name} analysis: {_analysis_extras(scale['reader_analysis'])}")
    return "\n".join(lines)


def _analysis_extras(analysis: dict) -> str:
    def seconds(key: str) -> str:
        value = analysis.get(key)
        return "-" if value is None else f"{value:.2f} s"

    return (
        f"computed from nothing: drawn in {seconds('cold_seconds')}, every table in "
        f"{seconds('cold_updated_seconds')}; rerun after one changed read "
        f"{seconds('new_read_seconds')} (older tables shown where new ones are computed), every "
        f"table of it shown after {seconds('updated_seconds')}; the next changed read "
        f"{seconds('next_read_seconds')}, all shown after {seconds('next_updated_seconds')}"
    )


def _pages_table(pages: list[dict], analysis: dict | None) -> str:
    lines = ["(p) first render, s | rerun, s | peak MB | torch loaded"]
    for p in pages:
        errors = f"  ERRORS: {p['errors']}" if p["errors"] else ""
        rerun = p.get("rerun_seconds", float("nan"))
        lines.append(
            f"  {p['page']:<16} {p['seconds']:6.2f} {rerun:6.2f} {p['peak_mb']:7.0f} "
            f"{p['torch']}{errors}"
        )
    if analysis:
        lines.append(
            f"(p) reader analysis, {analysis['readers']} readers x {analysis['reads']} reads: "
            f"first {analysis['first_seconds']:.2f} s, rerun with no new read "
            f"{analysis['rerun_seconds']:.2f} s; {_analysis_extras(analysis)}"
        )
    return "\n".join(lines)
