#!/usr/bin/env python3
"""Turns scripts/bench's results.jsonl into a Markdown table and an SVG chart.

    bench_report.py RESULTS OUT_DIR [--update-readme README SVG_PATH]

Writes OUT_DIR/report.md and OUT_DIR/bench.svg; with --update-readme also replaces the part of
README between <!-- bench:start --> and <!-- bench:end --> and writes the chart to SVG_PATH.
"""

import datetime
import json
import os
import platform
import re
import sys

TARGETS = ["bare-hyper", "mcp-bridge", "baseline", "supergateway", "mcp-proxy", "stdio2http"]
LABELS = {
    "bare-hyper": "bare hyper (limit)",
    "mcp-bridge": "mcp-bridge",
    "baseline": "mcp-bridge, baseline build (BENCH_BASELINE)",
    "supergateway": "supergateway",
    "mcp-proxy": "mcp-proxy",
    "stdio2http": "stdio2http",
}


def load(path):
    results = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                results.setdefault(r["target"], {})[r["shape"]] = r
    return results


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){memory}, Linux {platform.release()}"


def fmt_int(n):
    return f"{n:,.0f}".replace(",", " ")


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ratio(value, limit):
    if not limit:
        return ""
    return f" ({value / limit:.2f}×)"


def cell(results, target, shape, kind):
    r = results.get(target, {}).get(shape)
    if r is None:
        return "–"
    if r.get("errors", 0) < 0:
        return "failed"
    limit = results.get("bare-hyper", {}).get(shape, {})
    errors = f", {r['errors']} errors" if r.get("errors") else ""
    if kind == "throughput":
        return (
            f"{fmt_int(r['calls_per_s'])}/s{ratio(r['calls_per_s'], limit.get('calls_per_s'))}"
            f"<br>p50 {fmt_int(r['p50_us'])} µs, p99 {fmt_int(r['p99_us'])} µs{errors}"
        )
    if kind == "latency":
        added = ""
        if target != "bare-hyper" and limit.get("p50_us"):
            delta = r["p50_us"] - limit["p50_us"]
            added = f" ({'+' if delta >= 0 else '−'}{fmt_int(abs(delta))} µs)"
        return f"p50 {fmt_int(r['p50_us'])} µs{added}<br>p99 {fmt_int(r['p99_us'])} µs{errors}"
    if kind == "big":
        return f"{fmt_int(r['mb_per_s'])} MB/s{ratio(r['mb_per_s'], limit.get('mb_per_s'))}<br>peak RSS {mib(r['peak_rss_kib'])}{errors}"
    if kind == "slow":
        return f"{r['calls']} done{errors}<br>RSS {mib(r['rss_kib'])}"
    if kind == "idle":
        return mib(r["rss_kib"])
    if kind == "sessions":
        return f"{mib(r['rss_kib'])} after {fmt_int(r['calls'] + max(r.get('errors', 0), 0))}{errors}"
    return "?"


def table(results):
    present = [t for t in TARGETS if t in results]
    slow = results.get("mcp-bridge", {}).get("slow", {})
    big = results.get("mcp-bridge", {}).get("big", {})
    rows = [
        ("tools/call, one session, 16 connections", "session", "throughput"),
        ("Dify's shape: session per call, 16 workers", "dify", "throughput"),
        ("the same from a client that declares sampling (a server per session)", "sampler", "throughput"),
        ("tools/call as a 2026-07-28 client, no session, 16 connections", "modern", "throughput"),
        ("the same from a client that declares sampling (a server lent per call)", "modern-lent", "throughput"),
        ("one connection, one call at a time", "single", "latency"),
        (f"10 MB tool result ({big.get('calls', 0)} calls)", "big", "big"),
        (f"{slow.get('calls', 0) + max(slow.get('errors', 0), 0)} concurrent slow calls", "slow", "slow"),
        ("RSS idle", "idle", "idle"),
        ("RSS after a flood of sessions that never DELETE", "sessions", "sessions"),
    ]
    lines = ["| load | " + " | ".join(LABELS[t] for t in present) + " |"]
    lines.append("|---" * (len(present) + 1) + "|")
    for title, shape, kind in rows:
        lines.append(f"| {title} | " + " | ".join(cell(results, t, shape, kind) for t in present) + " |")
    bridge = results.get("mcp-bridge", {})
    peers = [t for t in present if t not in ("bare-hyper", "mcp-bridge")]
    if "baseline" in present and bridge:
        lines.append("")
        lines.append("| mcp-bridge against the baseline build | calls/s, this build ÷ baseline | p50, this build − baseline |")
        lines.append("|---|---|---|")
        for title, shape in [("one session, 16 connections", "session"), ("Dify's shape", "dify"), ("a client that declares sampling, session per call", "sampler"), ("one connection, one call at a time", "single")]:
            mine, base = bridge.get(shape, {}), results["baseline"].get(shape, {})
            speed = f"{mine['calls_per_s'] / base['calls_per_s']:.2f}×" if mine.get("calls_per_s") and base.get("calls_per_s") else "–"
            p50 = f"{mine['p50_us'] - base['p50_us']:+,.0f} µs".replace(",", " ") if "p50_us" in mine and "p50_us" in base else "–"
            lines.append(f"| {title} | {speed} | {p50} |")
        peers = [t for t in peers if t != "baseline"]
    if bridge and peers:
        lines.append("")
        lines.append("| mcp-bridge compared with | " + " | ".join(LABELS[t] for t in peers) + " |")
        lines.append("|---" * (len(peers) + 1) + "|")
        for title, shape in [("one session, 16 connections", "session"), ("Dify's shape", "dify")]:
            cells = []
            for t in peers:
                peer = results[t].get(shape, {}).get("calls_per_s")
                mine = bridge.get(shape, {}).get("calls_per_s")
                cells.append(f"{mine / peer:.0f}× faster" if peer and mine else "–")
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines += tenants_table(bridge)
    return "\n".join(lines)


def ms(us):
    return f"{us / 1000:,.1f} ms".replace(",", " ")


def tenants_table(bridge):
    """mcp-bridge run per tenant (the peers have none): its rows from run_tenants."""
    mixed = bridge.get("tenants")
    if mixed is None:
        return []

    def failed(r):
        return r is None or r.get("errors", 0) < 0

    def troubles(r):
        out = []
        if r.get("errors"):
            out.append(f"{fmt_int(r['errors'])} errors")
        if r.get("busy"):
            out.append(f"{fmt_int(r['busy'])} busy (503)")
        return ", " + ", ".join(out) if out else ""

    def first_calls(r):
        if failed(r):
            return "failed"
        restarted = f"; {r['evicted']} others stopped for room" if r.get("evicted", -1) > 0 else ""
        return (
            f"p50 {ms(r['p50_us'])}, p99 {ms(r['p99_us'])} (of {r['calls']}){troubles(r)}"
            f"<br>then warm: p50 {ms(r.get('warm_p50_us', 0))}{restarted}"
        )

    if failed(mixed):
        dify = "failed"
    else:
        dify = (
            f"{fmt_int(mixed['calls_per_s'])}/s{troubles(mixed)}<br>p50 {fmt_int(mixed['p50_us'])} µs, "
            f"p99 {fmt_int(mixed['p99_us'])} µs; {fmt_int(max(mixed.get('evicted', 0), 0))} tenants stopped for room"
        )
    idle, warm = bridge.get("tenants-idle", {}), bridge.get("tenants-warm", {})
    cap = warm.get("max_tenants", idle.get("max_tenants", "?"))
    workers = f", {mixed['connections']} workers" if mixed.get("connections") else ""
    new, evicted = bridge.get("tenant-new"), bridge.get("tenant-evicted")
    lines = [
        "",
        f"| mcp-bridge run per tenant (`--env-from-header`): {mixed.get('tenants', '?')} tenants, "
        f"`--max-tenants {cap}` | |",
        "|---|---|",
        f"| Dify's shape (session per call), each call as a random tenant{workers} | {dify} |",
        f"| a new tenant's first call (starts its server; the pool not full) | {first_calls(new)} |",
        f"| a stopped tenant's first call (starts its server again; the pool full) | {first_calls(evicted)} |",
    ]
    if warm.get("rss_per_tenant_kib") is not None:
        pss = (
            f"<br>in PSS (pages shared by processes counted once): +{mib(warm['added_pss_per_tenant_kib'])} per tenant"
            if "added_pss_per_tenant_kib" in warm
            else ""
        )
        lines.append(
            f"| RSS per warm tenant: (the bridge + its descendants) ÷ warm tenants "
            f"| {mib(warm['tree_rss_kib'])} ÷ {warm['warm_tenants']} = {mib(warm['rss_per_tenant_kib'])}; "
            f"the bridge alone at 0 tenants {mib(idle.get('bridge_rss_kib', 0))}, "
            f"so +{mib(warm['added_rss_per_tenant_kib'])} per tenant{pss} |"
        )
    return lines


def svg(results):
    present = [t for t in TARGETS if t in results]
    shapes = [("session", "one session, 16 connections"), ("dify", "Dify's shape (session per call)")]
    width, left, bar, gap = 760, 190, 16, 6
    values = [
        results[t].get(s, {}).get("calls_per_s", 0) for t in present for s, _ in shapes
    ]
    top = max([v for v in values if v] or [1])
    import math

    def x(v):
        # Logarithmic: the peers are two orders of magnitude below the limit.
        if v <= 1:
            return 0
        return (width - left - 120) * math.log10(v) / math.log10(top * 1.2)

    colors = {"session": "#2b6cb0", "dify": "#dd6b20"}
    y = 40
    parts = []
    for t in present:
        parts.append(f'<text x="{left - 10}" y="{y + bar + 2}" text-anchor="end" font-size="13">{LABELS[t]}</text>')
        for s, _ in shapes:
            v = results[t].get(s, {}).get("calls_per_s", 0)
            w = x(v)
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colors[s]}"/>')
            parts.append(f'<text x="{left + w + 6:.1f}" y="{y + bar - 3}" font-size="12">{fmt_int(v)}/s</text>')
            y += bar + 2
        y += gap * 2
    height = y + 30
    legend = []
    lx = left
    for s, title in shapes:
        legend.append(f'<rect x="{lx}" y="12" width="12" height="12" fill="{colors[s]}"/>')
        legend.append(f'<text x="{lx + 18}" y="22" font-size="12">{title}</text>')
        lx += 260
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" viewBox="0 0 {width} {height}">'
        f'<rect width="100%" height="100%" fill="white"/>'
        + "".join(legend)
        + "".join(parts)
        + f'<text x="{left}" y="{height - 8}" font-size="11" fill="#555">tools/call per second, log scale; '
        f"same machine, same stdio child, one run</text></svg>\n"
    )


def main():
    args = sys.argv[1:]
    if len(args) not in (2, 5):
        sys.exit(__doc__)
    results = load(args[0])
    out = args[1]
    when = datetime.date.today().isoformat()
    body = table(results)
    report = (
        f"Measured {when} on {machine()}; load generator, targets and child on the same machine, "
        "all traffic on 127.0.0.1 (`scripts/bench`).\n\n" + body + "\n"
    )
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    chart = svg(results)
    with open(os.path.join(out, "bench.svg"), "w") as f:
        f.write(chart)
    print(report)
    if len(args) == 5 and args[2] == "--update-readme":
        readme, svg_path = args[3], args[4]
        os.makedirs(os.path.dirname(svg_path), exist_ok=True)
        with open(svg_path, "w") as f:
            f.write(chart)
        with open(readme) as f:
            text = f.read()
        block = "<!-- bench:start -->\n" + report + "\n![tools/call per second](docs/bench.svg)\n<!-- bench:end -->"
        text, n = re.subn(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda _: block, text, flags=re.S)
        if n != 1:
            sys.exit("README has no <!-- bench:start --> ... <!-- bench:end --> section")
        with open(readme, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
