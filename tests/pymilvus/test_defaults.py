"""Nullable fields and `default_value` as Milvus has them: a row that leaves a field out (or
sends null) gets the field's default, a nullable field left out is null, describe reports the
default, and a default that does not fit the field is refused naming it."""

from pymilvus import DataType

from conftest import expect_error


def schema_with(client, **default_kw):
    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
    s.add_field("maybe", DataType.DOUBLE, nullable=True)
    s.add_field("rank", DataType.INT64, **default_kw)
    s.add_field("tag", DataType.VARCHAR, max_length=8, default_value="none")
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    return s


def test_defaults_and_nulls_fill_what_rows_leave_out(client, name):
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema_with(client, default_value=7), index_params=index)
    fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
    # pymilvus hands the default back as Milvus's ValueField.
    assert fields["rank"]["default_value"].long_data == 7
    assert fields["tag"]["default_value"].string_data == "none"
    assert fields["maybe"]["nullable"]
    client.insert(name, [
        {"pk": "a", "vec": [0.0, 0.0]},
        {"pk": "b", "maybe": None, "rank": None, "tag": None, "vec": [1.0, 0.0]},
        {"pk": "c", "maybe": 2.5, "rank": 3, "tag": "x", "vec": [2.0, 0.0]},
    ])
    rows = {r["pk"]: r for r in client.query(name, filter='pk != ""',
                                             output_fields=["maybe", "rank", "tag"])}
    assert rows["a"]["maybe"] is None and rows["a"]["rank"] == 7 and rows["a"]["tag"] == "none"
    assert rows["b"]["maybe"] is None and rows["b"]["rank"] == 7 and rows["b"]["tag"] == "none"
    assert rows["c"]["maybe"] == 2.5 and rows["c"]["rank"] == 3 and rows["c"]["tag"] == "x"
    # Filters see the defaults.
    assert sorted(r["pk"] for r in client.query(name, filter="rank == 7")) == ["a", "b"]


def test_a_default_that_does_not_fit_is_refused(client, name):
    expect_error(lambda: client.create_collection(
        name, schema=schema_with(client, default_value="seven")), 1100, "rank.default_value")
    assert not client.has_collection(name)
