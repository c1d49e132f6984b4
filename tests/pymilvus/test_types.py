"""Every supported scalar type round-trips through insert -> query / search."""

import pytest
from pymilvus import DataType, MilvusException


def test_scalar_types_round_trip(client, name):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f", DataType.FLOAT)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=8)
    schema.add_field("j", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index("v", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
    rows = [
        {
            "id": f"k{i}",
            "v": [1.0, float(i)],
            "b": i % 2 == 0,
            "i8": -i,
            "i16": 300 + i,
            "i32": None if i == 1 else 70000 + i,
            "i64": 1 << 40 | i,
            "f": 0.5 + i,
            "d": 1e10 + i,
            "s": f"s{i}",
            "j": {"n": i, "tags": ["a", "b"][: i + 1]},
            "extra": i * 10,
        }
        for i in range(3)
    ]
    client.insert(name, rows)
    got = {r["id"]: r for r in client.query(name, filter='id != ""', output_fields=["*"])}
    assert sorted(got) == ["k0", "k1", "k2"]
    for row in rows:
        g = got[row["id"]]
        for k, v in row.items():
            if k == "v":
                assert g[k] == pytest.approx(v)
            elif isinstance(v, float):
                assert g[k] == pytest.approx(v)
            else:
                assert g[k] == v, k
    # Filters over every kind of column, JSON paths and dynamic keys.
    assert [r["id"] for r in client.query(name, filter="i32 is null", output_fields=["id"])] == ["k1"]
    assert [r["id"] for r in client.query(name, filter='j["n"] == 2 and extra == 20', output_fields=["id"])] == ["k2"]
    assert [r["id"] for r in client.query(name, filter="b and i8 < 0", output_fields=["id"])] == ["k2"]
    hits = client.search(name, data=[[0.0, 1.0]], limit=3, output_fields=["s", "extra"])
    assert [h["id"] for h in hits[0]] == ["k2", "k1", "k0"]
    assert hits[0][0]["entity"] == {"s": "s2", "extra": 20}
    # Values out of a field's range are rejected, naming the field.
    with pytest.raises(MilvusException) as e:
        client.insert(name, [dict(rows[0], id="k9", s="too long for 8")])
    assert e.value.code == 1100 and "s" in e.value.message
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 3
    client.drop_collection(name)
