"""Generated blocks inside hand-written pages: between `<!-- generated: NAME -->` and
`<!-- end generated -->` the text is made by NAME's renderer from results files, with a line
naming each file (machine, date, commit); the rest of the page is the author's.

`fill(text, records)` rewrites every block of a page; an unknown NAME or a block left open is a
ValueError naming it. A renderer whose results file is absent says how to make it.
"""
from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

from bench.docgen.results import Records, source_line

START = re.compile(r"^<!-- generated: ([\w-]+) -->$")
END = "<!-- end generated -->"


def _absent(bench: str, command: str) -> list[str]:
    return _wrapped([f"*No results yet: `bench/results/{bench}.json` is made by `{command}`.*"])


def _wrapped(lines: list[str], width: int = 100) -> list[str]:
    return [part for line in lines
            for part in (textwrap.wrap(line, width, break_on_hyphens=False,
                                       subsequent_indent="  " if line.startswith("- ") else "")
                         or [""])]


def _output(record: dict[str, Any], table_only: bool) -> list[str]:
    """The default run's printed lines, abridged: its progress lines (first target only) and the
    table's first rows."""
    lines = record.get("output") or []
    table = next(i for i, line in enumerate(lines) if re.match(r"\s*target\s+label\s", line))
    head = ("device ", "dataset ", "at most ", "reference models:", "pretrained ", "embedded ",
            "scored ")
    shown = [] if table_only else [line for line in lines[:table] if line.startswith(head)]
    first = next((line for line in lines[:table] if re.match(r"target 1/\d+ ", line)), None)
    if first and not table_only:
        shown += [first, "..."]
    rows = lines[table:table + 3] + ["    ..."]
    ends = [line for line in lines[table:] if line.startswith(("AUC ", "run directory:"))]
    return _wrapped([*shown, *rows, *(ends[:1] if table_only else ends)])


def default_run(records: Records) -> list[str]:
    record = records.get("default_run")
    if record is None:
        return _absent("default_run", "python bench/default_run.py")
    return ["```", *_output(record, table_only=False), "```", "",
            *_wrapped([f"*Printed by `python run.py` in an empty folder "
                       f"({source_line(record)}).*"])]


def default_run_table(records: Records) -> list[str]:
    record = records.get("default_run")
    if record is None:
        return _absent("default_run", "python bench/default_run.py")
    return ["```", *_output(record, table_only=True), "```", "",
            *_wrapped([f"*The default run's table ({source_line(record)}).*"])]


def progress_line(records: Records) -> list[str]:
    """A search progress line of the default run, as its log shows it."""
    record = records.get("default_run")
    if record is None:
        return _absent("default_run", "python bench/default_run.py")
    found = [line for line in record.get("output") or []
             if re.match(r"target \d+/\d+ \(test #\d+\)", line)]
    line = found[min(3, len(found) - 1)]
    return ["```", *_wrapped([f"[...][brittle.stages.search][INFO] - {line}"]), "```", "",
            *_wrapped([f"*From the default run's log ({source_line(record)}).*"])]


def _mean(record: dict[str, Any], row: str, key: str = "mean") -> float:
    """A figure's mean over the record's seeds ('seed S: ROW')."""
    values = [v[key] if isinstance(v, dict) else v for name, v in record["figures"].items()
              if re.fullmatch(rf"seed \d+: {re.escape(row)}", name)]
    return sum(values) / len(values)


def lds_readings(records: Records) -> list[str]:
    """The ESVM's LDS under each reading beside sign estimation alone, means over the seeds."""
    record = records.get("lds_readings")
    if record is None:
        return _absent("lds_readings", "python bench/lds_readings.py --seeds 0 1 2 3")
    seeds = sorted({name.split(":")[0] for name in record["figures"] if name.startswith("seed ")})
    paper, alone = _mean(record, "ESVM inverse_clipped"), _mean(record, "sign estimation alone")
    gains = {m: _mean(record, f"ESVM {m}") - paper
             for m in ("inverse_bounded", "rank", "inverse_unsigned")}
    against_all = {m: _mean(record, f"ESVM {m}, SVM against all images")
                   for m in ("inverse_clipped", "inverse_unsigned")}
    text = [
        f"Means over {len(seeds)} seeds (every seed's interval: [benchmarks.md](benchmarks.md)'s "
        "`lds_readings`):", "",
        f"- the ESVM's ranking SVM (against the target's class), `inverse_clipped`: mean LDS "
        f"{paper:.3f}; sign estimation alone "
        f"{alone:.3f}; random magnitudes with the sign rule, top 5% kept: "
        f"{_mean(record, 'Random (random magnitudes, top 5%)'):.3f};",
        "- the other readings of the ranking's SVM: "
        + ", ".join(f"`{m}` {g:+.3f}" for m, g in gains.items()) + " against `inverse_clipped`;",
        "- the SVM trained against every training image (`esvm_lds.negatives=all`, section 3's "
        "text): " + ", ".join(f"`{m}` {v:.3f}" for m, v in against_all.items())
        + " (the latter the paper presets' reading);",
        f"- the ESVM with other classes 0 (`scorer=esvm_other_classes_zero`): "
        f"{_mean(record, 'ESVM inverse_clipped, other classes 0'):.3f}; the l2 scorer "
        f"{_mean(record, 'L2 inverse_clipped'):.3f};",
        f"- of the top 5% the ranking SVM's `inverse_clipped` keeps, "
        f"{_mean(record, 'kept_same_class'):.0%} are "
        f"the target's class and {_mean(record, 'kept_at_clip'):.0%} sit at the clip.", "",
        f"*{source_line(record)}.*"]
    return _wrapped(text)


def checks(records: Records) -> list[str]:
    """How the default run's supports hold on fresh models and what refinement made of them."""
    record = records.get("checks")
    if record is None:
        return _absent("checks", "python bench/checks.py")
    f = record["figures"]

    def line(task: str) -> str:
        hold = f"{f[task + '_hold']} of {f[task + '_found']} supports found hold"
        sizes = (f"; over those, the median refined support is "
                 f"{f[task + '_median_refined_of_held']:g} against the prefix's "
                 f"{f[task + '_median_prefix_of_held']:g} "
                 f"({f[task + '_refined_over_prefix']:.2f} of it)"
                 if f[task + "_hold"] else "")
        models = (f"; {f[task + '_check_models']} check models beside the search's "
                  f"{f[task + '_search_models']} ({f[task + '_models_over_default']:.2f}x the "
                  f"default run's)")
        return f"- {task}: {hold}{sizes}{models};"

    seeds = ", ".join(str(s) for s in f["seeds"])
    goal = (f["pooled_refined_over_prefix"] <= 0.75 and f["pooled_models_over_default"] <= 3)
    tried = ("" if "pooled_candidates" not in f else
             f"- the refinements' candidate sets (a support that holds less a chunk): "
             f"{f['pooled_candidates']} tested, {f['pooled_candidates_all_correct']} with every "
             f"model still classifying the target correctly, {f['pooled_candidates_flipped']} "
             f"flipped, {f['pooled_candidates_accepted']} held on fresh models and accepted;")
    return _wrapped([
        f"The default run's targets, seeds {seeds}, `search.verify={f['verify']}` "
        f"`search.refine_budget={f['refine_budget']}`:", "",
        line("remove"), line("mislabel"), line("pooled"), *([tried] if tried else []), "",
        "The goal (a refined median at most 0.75 of the prefix median, within three times the "
        f"default run's models) is {'met' if goal else 'not met'} here.", "",
        f"*{source_line(record)}.*"])


def magic_lds(records: Records) -> list[str]:
    """MAGIC's and the others' LDS in both settings, means over the seeds, as a table."""
    record = records.get("magic_lds")
    if record is None:
        return _absent("magic_lds", "python bench/magic_lds.py --seeds 0 1 2")
    cells = [name.split(": ", 1)[1] for name in record["figures"]
             if name.startswith("seed ") and name.count(": ") == 2
             and name.split(": ")[1].startswith(("independent", "same_order"))]
    columns = list(dict.fromkeys(c.rsplit(": ", 1)[0] for c in cells))
    methods = list(dict.fromkeys(c.rsplit(": ", 1)[1] for c in cells))
    lines = ["| LDS, mean of seeds | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {m} | " + " | ".join(f"{_mean(record, f'{c}: {m}'):.3f}" for c in columns)
              + " |" for m in methods]
    smooth = [c for c in record["figures"] if "recipe" in c and c.endswith("MAGIC (1)")
              and "same_order" in c]
    note = (f"With the smoother recipe (`{smooth[0].split(': ')[1]}`), MAGIC (1) in the "
            "single-model setting: " + ", ".join(
                f"{s.split(': ')[2].split(' ')[1]} {_mean(record, s.split(': ', 1)[1]):.3f}"
                for s in dict.fromkeys(
                    n for n in smooth if n.startswith("seed 0:"))) + "." if smooth else "")
    return [*lines, "", *_wrapped([note] if note else []), *([""] if note else []),
            *_wrapped([f"*{source_line(record)}.*"])]


def fresh_run(records: Records) -> list[str]:
    """What a fresh clone's `make run` took, and the extras' packages its environment held."""
    record = records.get("fresh_run")
    if record is None:
        return _absent("fresh_run", "python bench/fresh_run.py")
    figures = record["figures"]
    found = ", ".join(figures["extras_present"]) or "none"
    return _wrapped([
        f"A fresh clone's `make run` took {figures['make_run_seconds'] / 60:.1f} minutes here "
        "(clone, venv, torch, brittle's core dependencies from the machine's package mirror, and "
        f"the default job with {figures['job_torch_threads']} torch thread); of the extras' "
        f"packages (traker, dattri, ray, pytest, ...) its environment held {found} "
        f"({source_line(record)}).", ""])[:-1]


def _status(records: Records) -> list[str]:
    from bench.docgen.ledger import status_line
    return _wrapped([status_line(records)])


RENDERERS: dict[str, Callable[[Records], list[str]]] = {
    "default-run": default_run, "default-run-table": default_run_table,
    "progress-line": progress_line,
    "lds-readings": lds_readings, "reproduction-status": _status, "fresh-run": fresh_run,
    "checks": checks, "magic-lds": magic_lds}


def fill(text: str, records: Records) -> str:
    """`text` with every generated block rewritten from `records`."""
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        out.append(line)
        found = START.match(line)
        if not found:
            continue
        name = found.group(1)
        if name not in RENDERERS:
            raise ValueError(f"unknown generated block {name!r}; known: {', '.join(RENDERERS)}")
        for inner in lines:
            if inner == END:
                break
        else:
            raise ValueError(f"generated block {name!r} has no {END!r} line")
        out += [*RENDERERS[name](records), END]
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def names_in(text: str) -> list[str]:
    """The generated blocks a page holds, in order."""
    return [m.group(1) for m in map(START.match, text.splitlines()) if m]
