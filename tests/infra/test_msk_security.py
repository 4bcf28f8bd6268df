"""What checkov does not check: MSK lets clients in with IAM over TLS, and in no other way."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def cluster(modules):
    return modules["msk"].one("aws_msk_cluster", "this")


def _source(tf, path, kind: str) -> dict:
    """The ``locals``/``output`` blocks of a file's source text, by name."""
    return {k: v for entry in tf.load(path).get(kind, []) for k, v in entry.items()}


def test_client_authentication_is_iam_only(cluster):
    (auth,) = cluster.blocks("client_authentication")
    assert auth.get("unauthenticated") is False, "unauthenticated access must be explicitly off"
    assert not auth.blocks("tls"), (
        "mutual-TLS (certificate) client authentication must not be enabled"
    )
    (sasl,) = auth.blocks("sasl")
    assert sasl["iam"] is True
    assert sasl.get("scram", False) is False, "SASL/SCRAM must not be enabled"


def test_clients_and_brokers_talk_tls_only(cluster, modules):
    (encryption,) = cluster.blocks("encryption_info")
    (in_transit,) = encryption.blocks("encryption_in_transit")
    assert in_transit["client_broker"] == "TLS", (
        "TLS_PLAINTEXT or PLAINTEXT would open a plaintext listener"
    )
    assert in_transit.get("in_cluster", True) is True
    key = modules["msk"].child("log_group").one("aws_kms_key", "this")
    assert encryption["encryption_at_rest_kms_key_arn"] == key["arn"], (
        "data at rest uses the module's KMS key"
    )


def test_brokers_are_private(cluster):
    (group,) = cluster.blocks("broker_node_group_info")
    (connectivity,) = group.blocks("connectivity_info")
    (public,) = connectivity.blocks("public_access")
    assert public["type"] == "DISABLED"


def test_only_the_iam_port_is_open_and_only_to_the_job_the_producer_and_the_forwarder(
    modules, root
):
    msk = modules["msk"]
    rules = msk.instances("aws_vpc_security_group_ingress_rule", "this")
    assert rules, "nobody could reach the brokers"
    for rule in rules.values():
        assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (9098, 9098, "tcp")
        assert "referenced_security_group_id" in rule and "cidr_ipv4" not in rule, (
            "open to security groups, not CIDRs"
        )
    assert set(rules) == {"emr_master", "emr_core", "ecs_tasks", "alert_forwarder"}
    # No plaintext (9092), TLS-only (9094) or SCRAM (9096) listener is reachable.
    assert not msk.one("aws_security_group", "this").get("ingress")


def test_clients_get_the_iam_bootstrap_brokers(root, modules, cluster, tf):
    # One place names the brokers; every client's environment (kafka_environment for the
    # producer, the topics task and the job, the forwarder's own) starts from it. (Where a value
    # comes from is in the source text; what it evaluates to, below.)
    source = _source(tf, tf.INFRA / "main.tf", "locals")
    assert (
        str(source["kafka_connection"]).count("module.msk.cluster_bootstrap_brokers_sasl_iam") == 1
    )
    for name in ("kafka_environment", "alert_forwarder_environment"):
        assert "local.kafka_connection" in str(source[name]), name
        assert "cluster_bootstrap_brokers" not in str(source[name]), name
    outputs = _source(tf, tf.INFRA / "outputs.tf", "output")
    assert (
        outputs["msk_bootstrap_brokers_sasl_iam"]["value"]
        == "${module.msk.cluster_bootstrap_brokers_sasl_iam}"
    )
    output = _source(tf, tf.MODULES_DIR / "msk" / "outputs.tf", "output")
    assert output["cluster_bootstrap_brokers_sasl_iam"]["value"] == (
        "${aws_msk_cluster.this.bootstrap_brokers_sasl_iam}"
    )
    brokers = cluster["bootstrap_brokers_sasl_iam"]  # as EXTERNALS sets it
    assert root.output("msk_bootstrap_brokers_sasl_iam") == brokers
    job = root.output("emr_job_environment")
    assert (job["KAFKA_BOOTSTRAP_SERVERS"], job["KAFKA_AUTH_MODE"]) == (brokers, "msk-iam")
    for container in ("producer_container", "topics_admin_container", "alert_forwarder_container"):
        env = {e["name"]: e["value"] for e in modules["ecs"].local(container)["environment"]}
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == brokers, container


def test_the_configuration_creates_no_topics_implicitly(modules):
    properties = modules["msk"].one("aws_msk_configuration", "this")["server_properties"]
    settings = dict(line.split("=", 1) for line in properties.splitlines())
    assert settings["auto.create.topics.enable"] == "false"
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
