"""compact() / get_compaction_state() / get_compaction_plans(): a manual compaction rewrites
segments holding superseded or deleted rows, and every key keeps its last version."""

import numpy as np
from pymilvus import DataType

from conftest import compact_and_wait, count, expect_error


def test_manual_compaction_keeps_last_versions(client, name):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    rng = np.random.default_rng(7)
    versions = {}
    # 200 keys, then 20 of them again, then 10 deleted; each step sealed.
    first = rng.random((200, 8), dtype=np.float32)
    client.insert(name, [{"pk": i, "v": first[i]} for i in range(200)])
    versions.update({i: first[i] for i in range(200)})
    client.flush(name)
    again = rng.random((20, 8), dtype=np.float32)
    client.upsert(name, [{"pk": i, "v": again[i]} for i in range(20)])
    versions.update({i: again[i] for i in range(20)})
    client.flush(name)
    client.delete(name, ids=list(range(190, 200)))
    for i in range(190, 200):
        versions.pop(i)
    client.flush(name)

    compact_and_wait(client, name)
    assert count(client, name) == 190
    rows = client.query(name, filter="pk >= 0", output_fields=["pk", "v"], limit=1000)
    assert len(rows) == 190
    for r in rows:
        assert np.allclose(r["v"], versions[r["pk"]]), r["pk"]
    assert not client.get(name, ids=list(range(190, 200)))
    # An unknown id is refused with the field named.
    expect_error(lambda: client.get_compaction_state(987654321), 1100, "compactionID")
    client.drop_collection(name)


def test_compacting_a_missing_collection_is_refused(client):
    expect_error(lambda: client.compact("no_such_collection_xyz"), 100, "no_such_collection_xyz")
