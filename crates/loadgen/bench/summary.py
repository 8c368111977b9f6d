#!/usr/bin/env python3
"""Summarises crates/loadgen/bench/system.sh's output directory as Markdown tables.

    python3 crates/loadgen/bench/summary.py OUT
"""
import json
import os
import re
import sys
from collections import defaultdict

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def labels():
    return sorted({n.split("-")[0] for n in os.listdir(out) if n.endswith("-session-grpc.json")})


def run_row(label, what, report):
    run = report["target"]["runs"][0]
    lat = run["latency_ms"]
    base = (report.get("baseline") or {}).get("runs") or [None]
    base_p99 = base[0]["latency_ms"]["p99"] if base[0] else float("nan")
    empty = sum(s.get("empty_answers", 0) for s in run["steps"])
    partial = sum(s.get("partial_answers", 0) for s in run["steps"])
    print(f"| {label} | {what} | {run['offered_rate']:.0f} | {run['throughput']:.0f} | "
          f"{lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {lat['p999']:.2f} | "
          f"{run['errors']} | {empty} / {partial} | {base_p99:.2f} |")


print("| backend | run | offered /s | done /s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors "
      "| empty / partial | echo p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for label in labels():
    for name, what in [("session-grpc", "session mix, gRPC"), ("session-web", "session mix, gRPC-web"),
                       ("recommend", "recommend direct")]:
        report = load(f"{label}-{name}.json")
        if report:
            run_row(label, what, report)

print("\nPer step at the target rate (gRPC):\n")
print("| backend | step | done /s | p50 ms | p99 ms | p99.9 ms | errors |")
print("|---|---|---|---|---|---|---|")
for label in labels():
    for name in ["session-grpc", "recommend"]:
        report = load(f"{label}-{name}.json")
        if not report:
            continue
        for s in report["target"]["runs"][0]["steps"]:
            errors = ", ".join(f"{c} x{n}" for c, n in s["errors"].items()) or "0"
            lat = s["latency_ms"]
            print(f"| {label} | {name}: {s['name']} | {s['throughput']:.0f} | {lat['p50']:.2f} | "
                  f"{lat['p99']:.2f} | {lat['p999']:.2f} | {errors} |")

print("\nSaturation (sweep; highest rate sustained with p99 within the SLO, no errors):\n")
print("| backend | Tailor session steps/s | echo calls/s | ratio |")
print("|---|---|---|---|")
for label in labels():
    report = load(f"{label}-sweep.json")
    if not report or not report.get("ceiling"):
        continue
    c = report["ceiling"]
    ge = lambda saturated: "" if saturated else ">= "
    print(f"| {label} | {ge(c['target_saturated'])}{c['target']:.0f} | "
          f"{ge(c['baseline_saturated'])}{c['baseline']:.0f} | {c['ratio']:.3f} |")

# Server-side time per RPC from each role's Prometheus histogram (cumulative over the
# seeding and every run before the scrape: the session mix dominates it).
print("\nWhere the time goes (server-side mean per RPC, from /metrics after the gRPC session run):\n")
print("| backend | service/method | calls | mean ms |")
print("|---|---|---|---|")
line = re.compile(r'^(rpc_server_duration\w*?)_(sum|count)\{(.*)\} ([0-9.eE+-]+)$')
for label in labels():
    path = os.path.join(out, f"{label}-metrics.txt")
    if not os.path.exists(path):
        continue
    sums = defaultdict(lambda: [0.0, 0.0])
    unit = 1.0
    with open(path) as f:
        for text in f:
            m = line.match(text.strip())
            if not m:
                continue
            name, kind, attrs, value = m.groups()
            unit = 1000.0 if name.endswith("seconds") else 1.0
            a = dict(re.findall(r'(\w+)="([^"]*)"', attrs))
            key = f"{a.get('rpc_service', '?').split('.')[-1]}/{a.get('rpc_method', '?')}"
            sums[key][0 if kind == "sum" else 1] += float(value)
    for key, (total, count) in sorted(sums.items(), key=lambda kv: -kv[1][1]):
        if count >= 100:
            print(f"| {label} | {key} | {count:.0f} | {total / count * unit:.3f} |")

for label in labels():
    path = os.path.join(out, f"{label}-memory.txt")
    if os.path.exists(path):
        with open(path) as f:
            print(f"\nmemory ({label}): " + " / ".join(l.strip() for l in f))
