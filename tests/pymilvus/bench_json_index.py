#!/usr/bin/env python3
"""A search filtered on a JSON path with and without a JSON path index, against a running
server (not part of CI).

Collection "json_paths" holds --rows rows of a 4-d random vector and a JSON field `meta` with
the same values under two keys each: `color` and `tone` (1,000 strings), `price` and `x`
(row / 10). `color` and `price` get JSON path indexes (INVERTED, VARCHAR and DOUBLE); `tone`
and `x` do not. The same searches (top-10, Bounded) filtered by an equality and by a range
run --searches times per round, three rounds, after a first search; the first search's
milliseconds and the median milliseconds per search of each filter are printed, with the
rounds.

  target/pymilvus-venv-2.5/bin/python tests/pymilvus/bench_json_index.py \\
      --uri http://127.0.0.1:19530
"""

import argparse
import random
import statistics
import time

from pymilvus import DataType, MilvusClient


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", default="http://127.0.0.1:19530")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--searches", type=int, default=30)
    args = ap.parse_args()
    c = MilvusClient(uri=args.uri)
    name = "json_paths"
    if c.has_collection(name):
        c.drop_collection(name)
    s = c.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("meta", DataType.JSON)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    p = c.prepare_index_params()
    p.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    p.add_index("meta", index_type="INVERTED", index_name="by_price",
                params={"json_path": 'meta["price"]', "json_cast_type": "double"})
    p.add_index("meta", index_type="INVERTED", index_name="by_color",
                params={"json_path": 'meta["color"]', "json_cast_type": "varchar"})
    c.create_collection(name, schema=s, index_params=p)
    random.seed(1)
    for b in range(0, args.rows, 20_000):
        c.insert(name, [{"id": i, "meta": {"color": f"c{i % 1000}", "tone": f"c{i % 1000}",
                                           "price": i / 10, "x": i / 10},
                         "vec": [random.random() for _ in range(4)]}
                        for i in range(b, min(b + 20_000, args.rows))])
    c.flush(name)
    c.load_collection(name)
    cases = [('meta["color"] == "c7"', 'meta["tone"] == "c7"'),
             ('meta["price"] > 1000 and meta["price"] < 1100',
              'meta["x"] > 1000 and meta["x"] < 1100')]
    for pair in cases:
        for expr in pair:
            # The first search of a path no index covers extracts its values.
            t = time.time()
            c.search(name, [[0.5] * 4], limit=10, filter=expr, consistency_level="Bounded")
            first = (time.time() - t) * 1000
            rounds = []
            for _ in range(3):
                t = time.time()
                for _ in range(args.searches):
                    hits = c.search(name, [[0.5] * 4], limit=10, filter=expr,
                                    consistency_level="Bounded")[0]
                rounds.append((time.time() - t) / args.searches * 1000)
            shown = ", ".join(f"{x:.2f}" for x in rounds)
            print(f"{expr:48s} hits {len(hits)} first {first:.1f} ms, then median "
                  f"{statistics.median(rounds):.2f} ms/search (rounds {shown})")
    c.drop_collection(name)


if __name__ == "__main__":
    main()
