"""Medians per index and ef of a bench_scale.sh log: python3 bench_summary.py LOG"""
import json, re, statistics as st, sys

rows, cur = {}, None
for line in open(sys.argv[1]):
    if line.startswith("=="):
        cur = line.split()[-1]
    elif line.startswith("{"):
        j = json.loads(line)
        if "build_s" in j:
            rows.setdefault((cur, "build_s"), []).append(j["build_s"])
            rows.setdefault((cur, "resident_bytes"), []).append(j["resident_bytes_per_vector"])
        else:
            rows.setdefault((cur, j["ef"]), []).append((j["qps"], j["recall"]))
    elif m := re.match(r"hnswlib build_s ([\d.]+)", line):
        rows.setdefault(("hnswlib", "build_s"), []).append(float(m.group(1)))
    elif m := re.match(r"hnswlib ef\s+(\d+) recall ([\d.]+) qps\s+(\d+)", line):
        rows.setdefault(("hnswlib", int(m.group(1))), []).append((float(m.group(3)), float(m.group(2))))
for k, v in sorted(rows.items(), key=str):
    if isinstance(k[1], str):
        print(k, [round(x, 1) for x in v], "median", round(st.median(v), 1))
    else:
        qps = [q for q, _ in v]
        print(k, [round(q) for q in qps], "median", round(st.median(qps)), "recall", v[0][1])

# q/s at a recall target (default 0.95, or argv[2]): each index's median q/s
# per ef, interpolated linearly between the two efs whose recall brackets it.
target = float(sys.argv[2]) if len(sys.argv) > 2 else 0.95
at = {}
for idx in sorted({k[0] for k in rows}):
    curve = sorted((v[0][1], st.median(q for q, _ in v)) for k, v in rows.items()
                   if k[0] == idx and not isinstance(k[1], str))
    for (r0, q0), (r1, q1) in zip(curve, curve[1:]):
        if r0 <= target <= r1 and r1 > r0:
            at[idx] = q0 + (q1 - q0) * (target - r0) / (r1 - r0)
            print(f"{idx}: {at[idx]:.0f} q/s at recall {target}")
            break
    else:
        print(f"{idx}: recall {target} not bracketed by the efs measured")
if "hnswlib" in at:
    for idx, q in at.items():
        if idx != "hnswlib":
            print(f"{idx} / hnswlib at recall {target}: {q / at['hnswlib']:.2f}x")
