"""The posture report as one self-contained HTML page, to attach to a questionnaire.

No external asset of any kind (the page's own Content-Security-Policy forbids loading
one): inline CSS only, with a print stylesheet that keeps each entry on one page, shows
status in words as well as colour, and needs no background printing. Every value is
escaped.
"""

from __future__ import annotations

from html import escape

from ocrvault.posture.model import Entry, Report, Status
from ocrvault.posture.text import LABELS, evidence_lines

SUMMARY_HEADING = "Summary"

_CSS = """
:root { --ok: #1a7f37; --warn: #9a6700; --fail: #cf222e; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 0 0 .4rem; }
.meta { color: #57606a; margin: 0 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
         border-bottom: 1px solid var(--line); }
.status { display: inline-block; min-width: 3.5rem; text-align: center; font-weight: 600;
          border-radius: 4px; padding: 0 .4rem; color: #fff; }
.status.ok { background: var(--ok); } .status.warn { background: var(--warn); }
.status.fail { background: var(--fail); }
section.entry { border: 1px solid var(--line); border-left: 6px solid var(--line);
                border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; }
section.entry.ok { border-left-color: var(--ok); }
section.entry.warn { border-left-color: var(--warn); }
section.entry.fail { border-left-color: var(--fail); }
.fix { background: #fff8c5; padding: .4rem .6rem; border-radius: 4px; }
dl { display: grid; grid-template-columns: 14rem 1fr; gap: .2rem .8rem; margin: .6rem 0 0; }
dt { color: #57606a; } dd { margin: 0; font-family: ui-monospace, monospace;
     font-size: 12px; overflow-wrap: anywhere; }
dd ul { margin: 0; padding-left: 1rem; }
code { font-family: ui-monospace, monospace; }
@media print {
  @page { margin: 15mm; }
  body { margin: 0; max-width: none; font-size: 11pt; }
  .status { color: #000; background: none !important; border: 1px solid #000; }
  section.entry { break-inside: avoid; page-break-inside: avoid; }
  .fix { background: none; border: 1px solid #000; }
  a { color: inherit; text-decoration: none; }
}
"""


def _status(status: Status) -> str:
    return f'<span class="status {status.value}">{LABELS[status]}</span>'


def _value(lines: list[str], many: bool) -> str:
    if not many:
        return escape(lines[0])
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def _entry(entry: Entry) -> str:
    rows = "".join(f"<dt>{escape(name)}</dt>"
                   f"<dd>{_value(evidence_lines(value), isinstance(value, list | dict))}</dd>"
                   for name, value in entry.evidence.items())
    fix = f'<p class="fix"><strong>Fix:</strong> {escape(entry.fix)}</p>' if entry.fix else ""
    return (f'<section class="entry {entry.status.value}" id="{entry.id.value}">'
            f"<h2>{escape(entry.question)}</h2>"
            f"<p>{_status(entry.status)} <code>{entry.id.value}</code> {escape(entry.answer)}</p>"
            f"{fix}<dl>{rows}</dl></section>")


def render_html(report: Report) -> str:
    scope = (f"tenant {report.tenant} ({report.environment} key)" if report.scope == "tenant"
             else "the whole deployment")
    at = report.generated_at.isoformat().replace("+00:00", "Z")
    summary_rows = "".join(
        f'<tr><td>{_status(e.status)}</td><td><a href="#{e.id.value}">{escape(e.question)}'
        f"</a></td><td>{escape(e.answer)}</td></tr>" for e in report.entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ocrvault security posture{escape(f" - {report.tenant}" if report.tenant else "")}</title>
<style>{_CSS}</style></head>
<body>
<header><h1>ocrvault security posture</h1>
<p class="meta">Read from the running deployment at {escape(at)}, for {escape(scope)};
ocrvault {escape(report.ocrvault_version)}, region {escape(report.region or "not set")}.
Format {escape(report.format)}.</p></header>
<section id="summary"><h2>{SUMMARY_HEADING}</h2>
<p>Overall {_status(report.status)}: {report.summary.ok} ok, {report.summary.warn} warn,
{report.summary.fail} fail.</p>
<table><thead><tr><th>Status</th><th>Question</th><th>Answer</th></tr></thead>
<tbody>{summary_rows}</tbody></table></section>
{"".join(_entry(entry) for entry in report.entries)}
</body></html>
"""
