"""Resource groups: Quiver has Milvus's default group only, holding every querynode. The RPCs
answer truthfully about it and refuse, changing nothing, what would need another group."""

from conftest import expect_error

DEFAULT = "__default_resource_group"
NOT_FOUND = 300
PARAMETER_INVALID = 1100


def test_the_default_group_holds_the_loaded_replicas(client, name):
    client.create_collection(name, dimension=2)
    try:
        assert client.list_resource_groups() == [DEFAULT]
        rg = client.describe_resource_group(DEFAULT)
        assert rg.name == DEFAULT
        assert rg.num_available_node >= 1 and len(rg.nodes) == rg.num_available_node
        assert rg.num_loaded_replica.get(name) == 1
        replicas = client.describe_replica(name)
        assert {r.resource_group for r in replicas} == {DEFAULT}
        client.release_collection(name)
        assert name not in client.describe_resource_group(DEFAULT).num_loaded_replica
    finally:
        client.drop_collection(name)


def test_other_groups_are_refused_and_nothing_changes(client, name):
    client.create_collection(name, dimension=2)
    try:
        expect_error(lambda: client.create_resource_group("rg1"), PARAMETER_INVALID, "rg1")
        assert client.list_resource_groups() == [DEFAULT]
        expect_error(lambda: client.describe_resource_group("rg1"), NOT_FOUND, "rg1")
        expect_error(
            lambda: client.drop_resource_group(DEFAULT), PARAMETER_INVALID, "default rg"
        )
        # Dropping a group that does not exist is not an error (as Milvus).
        client.drop_resource_group("rg1")
        expect_error(
            lambda: client.transfer_replica(DEFAULT, "rg1", name, 1), NOT_FOUND, "rg1"
        )
        expect_error(
            lambda: client.transfer_replica(DEFAULT, DEFAULT, name, 1), PARAMETER_INVALID
        )
        assert client.describe_resource_group(DEFAULT).num_loaded_replica.get(name) == 1
    finally:
        client.drop_collection(name)
