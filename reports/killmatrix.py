"""Render fault kill-matrix results (tools.killmatrix --json) as one HTML page:
fault by behaviour, with dead behaviours (never kill anything) and blind spots (faults
nothing catches) listed first. Reads JSON and TOML only."""

from __future__ import annotations

import jinja2

from conformance import catalogue

_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>torch-conformance kill matrix</title>
<style>
:root{--bg:#fff;--fg:#1d1f21;--line:#ddd;--kill:#1a7f37;--miss:#cf222e;--other:#9a6700}
@media (prefers-color-scheme: dark){:root{--bg:#0d1117;--fg:#e6edf3;--line:#30363d;--kill:#3fb950;--miss:#f85149;--other:#d29922}}
body{background:var(--bg);color:var(--fg);font:13px system-ui,sans-serif;margin:1rem}
table{border-collapse:collapse}td,th{border:1px solid var(--line);padding:2px 5px;text-align:center}
th.b{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal;white-space:nowrap}
td.f{text-align:left;white-space:nowrap}.k{color:var(--kill)}.m{color:var(--miss);font-weight:bold}.o{color:var(--other)}
</style></head><body>
<h1>Kill matrix</h1>
<p>{{ s.faults }} faults: {{ s.killed }} killed, {{ s.survived }} survived, {{ s.masked_by_known_deviations or 0 }} masked by known deviations of this torch, {{ s.not_applicable }} not applicable on
{{ s.devices|join(", ") }}; median examples to kill {{ s.median_examples_to_kill }}, worst {{ s.worst_examples_to_kill }}.</p>
<h2>Blind spots (faults nothing catches)</h2>
<ul>{% for r in results if r.status == "survived" %}<li class="m">{{ r.fault }}: {{ r.description }}</li>{% else %}<li>none</li>{% endfor %}</ul>
<h2>Dead behaviours (no fault kills them)</h2>
<ul>{% for b in dead %}<li>{{ b }}</li>{% else %}<li>none</li>{% endfor %}</ul>
<h2>Matrix</h2>
<p><span class="k">■</span> killed by this behaviour &nbsp; <span class="m">□</span> named but survived &nbsp; <span class="o">•</span> failed elsewhere</p>
<table><tr><th>fault</th><th>status</th><th>examples</th>{% for b in behaviours %}<th class="b">{{ b }}</th>{% endfor %}</tr>
{% for r in results %}<tr><td class="f" title="{{ r.description }}">{{ r.fault }}</td><td>{{ r.status }}</td><td>{{ r.examples_to_kill or "" }}</td>
{% for b in behaviours %}<td>{% if b in r.killed_by %}<span class="k">■</span>{% elif b in r.trips and r.status not in ("not applicable", "masked") %}<span class="m">□</span>{% elif b in r.other_failures %}<span class="o">•</span>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table></body></html>""")


def render(summary: dict, results: list[dict]) -> str:
    everything = list(catalogue.behaviours())
    killers = {b for r in results for b in r["killed_by"]}
    return _TEMPLATE.render(s=summary, results=results, behaviours=everything, dead=[b for b in everything if b not in killers])
