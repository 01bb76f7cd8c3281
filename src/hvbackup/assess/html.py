"""The assessment as one self-contained HTML page: summary first, then VM by VM.

Inline CSS, no external resources; readable without JavaScript (a command is selected whole by one
click); a small inline script only adds the copy buttons' clipboard action.
"""

from __future__ import annotations

from html import escape

from hvbackup.assess.finding import ON_GUEST, SEVERITIES, Finding
from hvbackup.assess.report import Report, VmAssessment

SEVERITY_COLOURS = {"blocker": "#c62828", "warning": "#b26a00", "advice": "#1565c0", "info": "#546e7a"}
OK_COLOUR = "#2e7d32"

STYLE = (
    """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:0 0 8px}h3{font-size:16px;margin:0 0 6px}
.meta{color:#57606a;margin:0 0 16px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:0 0 20px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #d8dee4;vertical-align:top}
th{background:#eef1f4}
.badge{display:inline-block;min-width:64px;text-align:center;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600;text-transform:uppercase}
"""
    + "".join(
        f".sev-{s}{{background:{c}}}.finding.border-{s}{{border-left:6px solid {c}}}"
        for s, c in SEVERITY_COLOURS.items()
    )
    + f"""
.sev-ok{{background:{OK_COLOUR}}}
.counts .badge{{font-size:14px;padding:4px 12px;margin-right:6px}}
.verdict{{font-size:17px;font-weight:600;margin:4px 0}}
.verdict.below{{color:{SEVERITY_COLOURS["blocker"]}}}
.finding{{border:1px solid #d8dee4;border-radius:6px;padding:10px 14px;margin:10px 0;background:#fcfcfd}}
.finding code.id{{color:#57606a;font-weight:400}}
.evidence{{color:#424a53;margin:4px 0}}
.where{{color:#57606a;font-size:13px;margin:6px 0 2px}}
.cmd{{display:flex;gap:8px;align-items:flex-start}}
.cmd pre{{flex:1;margin:0;background:#1f2328;color:#f0f3f6;padding:8px 10px;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere}}
.cmd code{{user-select:all;font:13px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}}
.copy{{font-size:13px;padding:6px 10px;border:1px solid #8c959f;border-radius:6px;background:#fff;cursor:pointer}}
ul.improve{{margin:4px 0 8px 20px;padding:0}}
footer{{color:#57606a;font-size:13px}}
"""
)

SCRIPT = """
for (const b of document.querySelectorAll("button.copy")) {
  b.addEventListener("click", () => {
    navigator.clipboard.writeText(b.previousElementSibling.textContent).then(() => { b.textContent = "Copied"; });
  });
}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _badge(severity: str | None) -> str:
    if severity is None:
        return '<span class="badge sev-ok">ok</span>'
    return f'<span class="badge sev-{_e(severity)}">{_e(severity)}</span>'


def _summary(report: Report) -> str:
    counts = report.counts()
    badges = "".join(f'<span class="badge sev-{s}">{counts[s]} {s}</span>' for s in SEVERITIES)
    rows = "".join(_summary_row(i, vm) for i, vm in enumerate(report.vms, 1))
    return (
        '<section class="summary"><h2>Summary</h2>'
        f'<p class="counts">{badges}</p>'
        "<table><thead><tr><th>VM</th><th>State</th><th>Backup will be</th><th>Meets policy</th><th>Worst finding</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _summary_row(index: int, vm: VmAssessment) -> str:
    meets = "yes" if vm.verdict.meets_policy else "<strong>no</strong>"
    return (
        f'<tr><td><a href="#vm-{index}">{_e(vm.vm.name)}</a></td><td>{_e(vm.vm.state.name)}</td>'
        f"<td>{_e(vm.verdict.summary)}</td><td>{meets}</td><td>{_badge(vm.worst)}</td></tr>"
    )


def _finding(vm: VmAssessment, finding: Finding) -> str:
    where = (
        f"Run in the guest {vm.vm.name}, as root:"
        if finding.run_on == ON_GUEST
        else "Run on the Hyper-V host (PowerShell):"
    )
    return (
        f'<article class="finding border-{_e(finding.severity)}">'
        f'<h3>{_badge(finding.severity)} {_e(finding.title)} <code class="id">{_e(finding.id)}</code></h3>'
        f'<p class="evidence"><strong>Seen:</strong> {_e(finding.evidence)}</p>'
        f'<p class="where">{_e(where)}</p>'
        f'<div class="cmd"><pre><code>{_e(finding.remedy)}</code></pre><button type="button" class="copy">Copy</button></div>'
        "</article>"
    )


def _vm_section(index: int, vm: VmAssessment) -> str:
    verdict = vm.verdict
    improvements = "".join(f"<li>{_e(i)}</li>" for i in verdict.improvements)
    better = f'<p>To get a better backup:</p><ul class="improve">{improvements}</ul>' if improvements else ""
    findings = "".join(_finding(vm, f) for f in vm.findings) or "<p>No findings.</p>"
    guest = "guest readiness report received" if vm.guest_reported else "no guest readiness report"
    return (
        f'<section class="vm" id="vm-{index}"><h2>{_e(vm.vm.name)} {_badge(vm.worst)}</h2>'
        f'<p class="meta">{_e(vm.vm.state.name)} · generation {vm.vm.generation} · version {_e(vm.vm.version)} · {guest}</p>'
        f'<p class="verdict{"" if verdict.meets_policy else " below"}">{_e(verdict.summary)}</p>'
        f"<p>Mode <strong>{_e(verdict.mode)}</strong>, consistency <strong>{_e(verdict.consistency)}</strong>"
        + (f", downtime about {verdict.downtime_s:.0f} s" if verdict.downtime_s is not None else "")
        + "</p>"
        + better
        + findings
        + "</section>"
    )


def render_html(report: Report) -> str:
    policy = report.policy
    sections = "".join(_vm_section(i, vm) for i, vm in enumerate(report.vms, 1))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>hvbackup assessment: {_e(report.host)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>Backup readiness: {_e(report.host)}</h1>"
        f'<p class="meta">{len(report.vms)} VM(s) · assessed {_e(report.generated)} · policy: '
        f"{_e(policy.consistency)}-consistent or better, downtime allowed: {_e(policy.allow_downtime)}</p>"
        + _summary(report)
        + sections
        + "<footer><p>Severities: blocker — the backup fails or misses data; warning — it works, with a risk or a "
        "weaker result; advice — better practice; info — for the record. hvbackup assess exits 4 when any blocker "
        "is found, 2 for warnings, 0 otherwise.</p></footer>"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )
