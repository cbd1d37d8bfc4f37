"""The posture report as Markdown: a summary table, then each entry with its evidence."""

from __future__ import annotations

from ocrvault.posture.model import Report
from ocrvault.posture.text import LABELS, evidence_lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    scope = (f"tenant {report.tenant} ({report.environment} key)" if report.scope == "tenant"
             else "the whole deployment")
    at = report.generated_at.isoformat().replace("+00:00", "Z")
    lines = [
        "# ocrvault security posture", "",
        f"Read from the running deployment at {at}, for {scope}; ocrvault "
        f"{report.ocrvault_version}, region {report.region or 'not set'}.", "",
        f"**Overall: {LABELS[report.status]}** ({report.summary.ok} ok, "
        f"{report.summary.warn} warn, {report.summary.fail} fail)", "",
        "| status | question | answer |", "|---|---|---|",
    ]
    lines += [f"| {LABELS[e.status]} | {_cell(e.question)} | {_cell(e.answer)} |"
              for e in report.entries]
    for entry in report.entries:
        lines += ["", f"## {entry.question}", "",
                  f"`{entry.id.value}`: **{LABELS[entry.status]}**. {entry.answer}"]
        if entry.fix:
            lines += ["", f"**Fix:** {entry.fix}"]
        if entry.evidence:
            lines += ["", "Evidence:", ""]
            for name, value in entry.evidence.items():
                shown = evidence_lines(value)
                if len(shown) == 1 and not isinstance(value, (list, dict)):
                    lines.append(f"- {name}: `{shown[0]}`")
                else:
                    lines.append(f"- {name}:")
                    lines += [f"  - `{line}`" for line in shown]
    return "\n".join(lines) + "\n"
