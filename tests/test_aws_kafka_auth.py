"""MSK IAM authentication: the producer's token callback and the Kafka options of every auth mode.

No AWS: the signer runs on fake credentials from ``fake_aws_credentials``; STS (role ARN mode)
is moto's.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from moto import mock_aws

from emr_jobs.core.contracts import LAKE
from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import SettingsError
from producer.kafka_config import (
    admin_config,
    msk_iam_token_callback,
    producer_config,
    unsecured_jwt_callback,
)

MSK_BROKERS = (
    "b-1.smartcity.abc123.c2.kafka.eu-west-2.amazonaws.com:9098,"
    "b-2.smartcity.abc123.c2.kafka.eu-west-2.amazonaws.com:9098"
)
IAM_LOGIN_MODULE = "software.amazon.msk.auth.iam.IAMLoginModule"
IAM_CALLBACK_HANDLER = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"


def decode_token(token: str) -> str:
    """The presigned URL inside an MSK IAM token (base64url without padding)."""
    assert "=" not in token and "+" not in token and "/" not in token, "not unpadded base64url"
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def signed_query(token: str) -> dict[str, str]:
    url = urlparse(decode_token(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "kafka.eu-west-2.amazonaws.com", "/")
    return {k: v[0] for k, v in parse_qs(url.query).items()}


# --- the producer's token callback ---


def test_the_token_is_a_presigned_kafka_cluster_connect_url_expiring_in_seconds(
    fake_aws_credentials,
):
    """With the default credential chain the callback yields a base64url presigned URL for
    kafka-cluster:Connect, and an expiry in epoch SECONDS about 15 minutes ahead (the signer
    itself returns milliseconds)."""
    with mock_aws():
        before = time.time()
        token, expiry = msk_iam_token_callback("eu-west-2")("")
        access_key = os.environ["AWS_ACCESS_KEY_ID"]  # moto's fake key inside mock_aws
        session_token = os.environ.get("AWS_SESSION_TOKEN")
    raw_url = decode_token(token)
    assert "Action=kafka-cluster%3AConnect" in raw_url
    query = signed_query(token)
    assert query["Action"] == "kafka-cluster:Connect"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "900"
    assert query["X-Amz-Credential"].startswith(f"{access_key}/")
    assert query["X-Amz-Credential"].endswith("/eu-west-2/kafka-cluster/aws4_request")
    assert query.get("X-Amz-Security-Token") == session_token
    assert query["User-Agent"].startswith("aws-msk-iam-sasl-signer-python/")
    assert len(query["X-Amz-Signature"]) == 64

    assert isinstance(expiry, float)
    assert expiry < 1e10, f"expiry {expiry} looks like milliseconds, not seconds"
    assert before + 800 <= expiry <= before + 1000
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert expiry == signed_at.timestamp() + 900


def test_the_callback_divides_the_signers_milliseconds_by_1000(monkeypatch):
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    calls = []

    def fake_generate(region):
        calls.append(region)
        return "dG9rZW4", 1_767_600_900_000

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", fake_generate)
    assert msk_iam_token_callback("eu-west-1")("ignored config") == ("dG9rZW4", 1_767_600_900.0)
    assert calls == ["eu-west-1"]


def test_a_laptop_can_sign_with_a_named_profile(fake_aws_credentials, tmp_path, monkeypatch):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[smartcity-dev]\naws_access_key_id = AKIAPROFILEEXAMPLE\n"
        "aws_secret_access_key = profile-secret\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with mock_aws():
        token, expiry = msk_iam_token_callback("eu-west-2", aws_profile="smartcity-dev")("")
    query = signed_query(token)
    assert query["X-Amz-Credential"].startswith("AKIAPROFILEEXAMPLE/")
    assert "X-Amz-Security-Token" not in query
    assert time.time() + 800 <= expiry <= time.time() + 1000


def test_a_laptop_can_sign_as_an_assumed_role(fake_aws_credentials):
    with mock_aws():
        token, expiry = msk_iam_token_callback(
            "eu-west-2", role_arn="arn:aws:iam::123456789012:role/smartcity-dev-ecs-producer"
        )("")
    query = signed_query(token)
    # moto's STS hands out temporary credentials (ASIA…) with a session token.
    assert query["X-Amz-Credential"].startswith("ASIA")
    assert query["X-Amz-Security-Token"] not in ("", "testing")
    assert time.time() + 800 <= expiry <= time.time() + 1000


def test_the_cli_passes_region_and_role_to_the_signer(fake_aws_credentials, monkeypatch):
    """``smartcity-producer --auth-mode msk-iam --aws-region … --role-arn …`` signs as that
    role for that region."""
    import producer.cli as cli
    from producer.kafka_producer import DeliveryReport

    seen = {}

    def fake_send_events(events, settings, **kwargs):
        seen["settings"] = settings
        seen["token_callback"] = kwargs["token_callback"]
        return DeliveryReport()

    monkeypatch.setattr(cli, "send_events", fake_send_events)
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # --aws-region wins over the environment
    role = "arn:aws:iam::123456789012:role/laptop-producer"
    code = cli.main(
        [
            "--auth-mode",
            "msk-iam",
            "--bootstrap-servers",
            MSK_BROKERS,
            "--aws-region",
            "eu-west-2",
            "--role-arn",
            role,
            "--max-events",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    assert seen["settings"].auth_mode == "msk-iam"
    assert seen["settings"].aws_region == "eu-west-2"
    with mock_aws():
        token, _ = seen["token_callback"]("")
    assert signed_query(token)["X-Amz-Credential"].startswith("ASIA")


def test_msk_iam_without_a_region_is_refused_naming_the_variable():
    with pytest.raises(SettingsError, match="AWS_REGION"):
        KafkaSettings(bootstrap_servers=MSK_BROKERS, auth_mode="msk-iam")


# --- the producer's and admin client's options ---


def test_producer_options_without_auth_are_plaintext():
    config = producer_config(KafkaSettings(bootstrap_servers="127.0.0.1:9092"))
    assert config["security.protocol"] == "PLAINTEXT"
    assert "sasl.mechanism" not in config and "oauth_cb" not in config


def test_producer_options_for_msk_iam_are_sasl_ssl_oauthbearer_with_the_signer(
    fake_aws_credentials,
):
    settings = KafkaSettings(
        bootstrap_servers=MSK_BROKERS, auth_mode="msk-iam", aws_region="eu-west-2"
    )
    config = producer_config(settings)
    assert config["bootstrap.servers"] == MSK_BROKERS
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "OAUTHBEARER"
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    with mock_aws():
        token, expiry = config["oauth_cb"]("")
    assert signed_query(token)["Action"] == "kafka-cluster:Connect"
    assert expiry < 1e10
    # The admin client (topics command) authenticates the same way.
    admin = admin_config(settings)
    assert (admin["security.protocol"], admin["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    assert callable(admin["oauth_cb"])


def test_producer_options_for_the_local_oauthbearer_listener_are_sasl_plaintext():
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9093", auth_mode="oauthbearer-unsecured")
    config = producer_config(settings)
    assert (config["security.protocol"], config["sasl.mechanism"]) == (
        "SASL_PLAINTEXT",
        "OAUTHBEARER",
    )
    token, expiry = config["oauth_cb"]("")
    header, claims, signature = token.split(".")
    assert signature == ""
    assert base64.urlsafe_b64decode(header + "==") == b'{"alg":"none"}'
    assert time.time() + 3500 <= expiry <= time.time() + 3600


def test_the_unsecured_token_expiry_matches_its_exp_claim():
    import json

    token, expiry = unsecured_jwt_callback("p", lifetime_seconds=30)("")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == "p"
    assert claims["exp"] == expiry
    assert claims["iat"] <= time.time() < claims["exp"] <= time.time() + 30


# --- the job's options ---


def test_job_options_for_msk_iam_use_the_aws_msk_iam_mechanism():
    options = spark_kafka_options(
        KafkaSettings(bootstrap_servers=MSK_BROKERS, auth_mode="msk-iam", aws_region="eu-west-2")
    )
    assert options["kafka.bootstrap.servers"] == MSK_BROKERS
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "AWS_MSK_IAM"
    assert options["kafka.sasl.jaas.config"] == f"{IAM_LOGIN_MODULE} required;"
    assert options["kafka.sasl.client.callback.handler.class"] == IAM_CALLBACK_HANDLER
    assert options["groupIdPrefix"] == "smartcity-job"


def test_job_options_without_auth_have_no_sasl_and_the_same_group_prefix():
    options = spark_kafka_options(KafkaSettings(bootstrap_servers="127.0.0.1:9092"))
    assert not any("sasl" in k or "security" in k for k in options)
    assert options["groupIdPrefix"] == "smartcity-job"


def test_the_job_refuses_the_local_oauthbearer_mode():
    with pytest.raises(SettingsError, match="oauthbearer-unsecured"):
        spark_kafka_options(KafkaSettings(auth_mode="oauthbearer-unsecured"))


def test_the_group_prefix_is_the_one_the_iam_policy_names():
    assert LAKE.consumer_group_prefix == "smartcity-job"
    policy = (REPO_ROOT / "infra" / "modules" / "iam" / "main.tf").read_text(encoding="utf-8")
    assert "local.lake.consumer_group_prefix" in policy


# --- the jar behind those options ---

SPARK_JARS = REPO_ROOT / ".cache" / "jars" / "spark"


def _msk_iam_jar() -> Path:
    jars = sorted(SPARK_JARS.glob("aws-msk-iam-auth-*.jar"))
    if not jars:
        pytest.fail(f"no aws-msk-iam-auth jar in {SPARK_JARS}; run `make setup`")
    return jars[-1]


def test_the_classes_the_job_options_name_are_in_the_resolved_jar():
    names = set(zipfile.ZipFile(_msk_iam_jar()).namelist())
    for cls in (IAM_LOGIN_MODULE, IAM_CALLBACK_HANDLER):
        assert cls.replace(".", "/") + ".class" in names


PROBE = """
import java.util.Properties;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class MskIamProbe {
    static void build(Properties props) {
        // Building the consumer loads the JAAS login module and the callback handler: exactly
        // what Spark's Kafka source does on EMR. Nothing connects.
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(
                props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        }
    }

    public static void main(String[] args) {
        Properties props = new Properties();
        for (int i = 0; i + 1 < args.length; i += 2) props.put(args[i], args[i + 1]);
        build(props);
        System.out.println("CONSUMER_OK");
        // Control: a misspelt handler class must fail, or this probe proves nothing.
        String handler = "sasl.client.callback.handler.class";
        props.put(handler, props.getProperty(handler) + "Misspelt");
        try {
            build(props);
            System.out.println("MISSPELT_ACCEPTED");
        } catch (Exception e) {
            System.out.println("MISSPELT_REJECTED");
        }
    }
}
"""


def _run_probe(tmp_path: Path, options: dict[str, str]) -> subprocess.CompletedProcess:
    import pyspark

    java = shutil.which("java")
    if java is None:
        pytest.skip("no java")
    _msk_iam_jar()
    source = tmp_path / "MskIamProbe.java"
    source.write_text(PROBE, encoding="utf-8")
    classpath = os.pathsep.join(
        [str(SPARK_JARS / "*"), str(Path(pyspark.__file__).parent / "jars" / "*")]
    )
    # The consumer resolves its bootstrap hosts when it is built (not when it connects), and
    # the MSK names resolve only inside the VPC: point it at loopback, where nothing listens.
    options = {**options, "kafka.bootstrap.servers": "127.0.0.1:9098"}
    kafka_args = [x for k, v in options.items() if k.startswith("kafka.") for x in (k[6:], v)]
    return subprocess.run(
        [java, "-cp", classpath, str(source), "group.id", "smartcity-job-probe", *kafka_args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration
def test_the_jvm_builds_a_kafka_consumer_from_the_msk_iam_job_options(tmp_path):
    """kafka-clients from the Spark jar set plus aws-msk-iam-auth, on pyspark's own classpath,
    accept the job's MSK IAM options (a misspelt class would fail here, not on EMR)."""
    options = spark_kafka_options(
        KafkaSettings(bootstrap_servers=MSK_BROKERS, auth_mode="msk-iam", aws_region="eu-west-2")
    )
    result = _run_probe(tmp_path, options)
    if "jdk.compiler" in result.stderr and "not found" in result.stderr:
        pytest.skip("a JRE without the source launcher; install a JDK")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["CONSUMER_OK", "MISSPELT_REJECTED"]
