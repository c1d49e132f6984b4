"""Medians of a bench_scale.sh log: python3 bench_summary.py LOG [RECALL]

Build times (and resident bytes) come from the build rounds. Search figures come from the
search passes when the log has them (each index searched right after the other, over the
graphs the last round kept), else from the rounds (logs of earlier versions). q/s at the
target recall (default 0.95) is interpolated linearly between the two efs whose recall
brackets it; the ratio to hnswlib is given per pass (both indexes measured seconds apart)
and as the median of those.
"""
import json, re, statistics as st, sys

builds, search, cur = {}, {}, None  # search[(phase, n, idx)][ef] = (qps, recall)
for line in open(sys.argv[1]):
    if line.startswith("=="):
        _, phase, n, cur = line.split()
        key = (phase, int(n), cur)
    elif line.startswith("{"):
        j = json.loads(line)
        if "build_s" in j:
            if not j.get("loaded"):
                builds.setdefault((cur, "build_s"), []).append(j["build_s"])
                builds.setdefault((cur, "resident_bytes"), []).append(j["resident_bytes_per_vector"])
        else:
            search.setdefault(key, {})[j["ef"]] = (j["qps"], j["recall"])
    elif m := re.match(r"hnswlib build_s ([\d.]+)", line):
        builds.setdefault(("hnswlib", "build_s"), []).append(float(m.group(1)))
    elif m := re.match(r"hnswlib ef\s+(\d+) recall ([\d.]+) qps\s+(\d+)", line):
        # hnswlib_ref.py measures each ef twice in a round: keep both.
        per = search.setdefault(key, {})
        ef = int(m.group(1))
        while ef in per:
            ef += 0.001
        per[ef] = (float(m.group(3)), float(m.group(2)))

for k, v in sorted(builds.items()):
    print(k, [round(x, 1) for x in v], "median", round(st.median(v), 1))

phase = "pass" if any(k[0] == "pass" for k in search) else "round"
runs = {k: v for k, v in search.items() if k[0] == phase}
print(f"search figures from the {phase}es" if phase == "pass" else "search figures from the rounds", f"({len({k[1] for k in runs})})")
curves = {}
for (_, n, idx), per in runs.items():
    for ef, qr in per.items():
        curves.setdefault(idx, {}).setdefault(int(ef), []).append(qr)
for idx, per in sorted(curves.items()):
    for ef, v in sorted(per.items()):
        qps = [q for q, _ in v]
        print(idx, ef, [round(q) for q in qps], "median", round(st.median(qps)), "recall", v[0][1])

target = float(sys.argv[2]) if len(sys.argv) > 2 else 0.95


def at_target(points):
    """q/s at the target recall on a curve of (recall, qps), or None if not bracketed."""
    curve = sorted(points)
    for (r0, q0), (r1, q1) in zip(curve, curve[1:]):
        if r0 <= target <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


med = {}
for idx, per in sorted(curves.items()):
    med[idx] = at_target([(v[0][1], st.median(q for q, _ in v)) for v in per.values()])
    print(f"{idx}: " + (f"{med[idx]:.0f} q/s at recall {target} (median curve)" if med[idx] else
                        f"recall {target} not bracketed by the efs measured"))
if med.get("hnswlib"):
    for idx, q in med.items():
        if idx != "hnswlib" and q:
            print(f"{idx} / hnswlib at recall {target}, median curves: {q / med['hnswlib']:.2f}x")
    # Per run: each index against hnswlib in the same pass (or round).
    for idx in sorted(i for i in curves if i != "hnswlib"):
        ratios = []
        for n in sorted({k[1] for k in runs}):
            mine, ref = runs.get((phase, n, idx)), runs.get((phase, n, "hnswlib"))
            if mine and ref:
                a = at_target([(r, q) for q, r in mine.values()])
                b = at_target([(r, q) for q, r in sorted(ref.values())])
                if a and b:
                    ratios.append(a / b)
        if ratios:
            print(f"{idx} / hnswlib at recall {target} per {phase}: "
                  f"{' '.join(f'{x:.2f}' for x in ratios)}; median {st.median(ratios):.2f}x, "
                  f"min {min(ratios):.2f}x, max {max(ratios):.2f}x")
