"""The compose stack (local/docker-compose.yml), checked statically: there is no Docker here.

The file must parse, name the services the README names, agree with the project's settings
(ports, variable names, the contracts' topics, an s3a:// lake), pin every image, give every
awaited service a healthcheck, and configure Kafka's listeners consistently.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
import yaml

from emr_jobs.contracts import CONTRACTS, STREAMS
from emr_jobs.kafka_options import KafkaSettings
from emr_jobs.settings import REPO_ROOT, JobSettings
from scripts.run_job import S3A_JARS_DIR, SPARK_JARS_DIR

LOCAL = REPO_ROOT / "local"
COMPOSE_FILE = LOCAL / "docker-compose.yml"
README = REPO_ROOT / "README.md"

#: Containers reach Kafka here; the host reaches it at KafkaSettings' default.
INTERNAL_BOOTSTRAP = "kafka:29092"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: object) -> str:
    """What compose makes of a value with nothing set in the shell: ``${X:-d}`` -> ``d``."""
    return _VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), str(value))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment is written as a mapping"
    return {k: interpolate(v) for k, v in env.items()}


def kafka_env(services) -> dict[str, str]:
    return environment(services["kafka"])


def listener_map(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` -> {NAME: host:port}."""
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        assert name and address, f"malformed listener {item!r}"
        assert name not in out, f"listener {name} given twice"
        out[name] = address
    return out


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def readme_compose_services() -> list[str]:
    """Service names in the first column of the tables in the README's compose section."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Compose stack \(Docker\)\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README has no '## Compose stack (Docker)' section"
    names = re.findall(r"^\| `([a-z0-9-]+)` \|", match.group(1), re.M)
    assert names, "the README's compose section has no table of services"
    return names


# --- the file and the README ---------------------------------------------------------------------


def test_the_compose_file_parses_and_defines_the_stack(compose, services):
    assert set(compose) <= {"name", "services", "volumes", "networks"} | {
        k for k in compose if k.startswith("x-")
    }
    for name in ("kafka", "topics", "minio", "minio-init", "spark-master", "spark-worker-1",
                 "spark-worker-2", "spark-submit", "producer"):
        assert name in services, f"service {name} is missing"


def test_every_service_the_readme_names_exists_and_every_service_is_documented(services):
    named = readme_compose_services()
    assert sorted(set(named)) == sorted(services)


def test_there_is_no_zookeeper(services):
    assert "zookeeper" not in yaml.safe_dump(services).lower()


# --- images --------------------------------------------------------------------------------------


def assert_pinned(image: str, where: str) -> None:
    repository, _, tag = image.partition("@")[0].rpartition(":")
    assert repository and "/" not in tag, f"{where}: image {image!r} has no tag"
    assert tag != "latest" and re.search(r"\d", tag), f"{where}: {image!r} is not a release"


def test_every_image_is_pinned_to_a_release_never_latest(services):
    for name, service in services.items():
        if "build" in service:
            # Built here: its base images are what gets pulled, and they are pinned.
            dockerfile = REPO_ROOT / service["build"]["dockerfile"]
            assert (LOCAL / service["build"]["context"]).resolve() == REPO_ROOT
            bases = re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(encoding="utf-8"), re.M)
            assert bases, f"{name}: {dockerfile} has no FROM"
            for base in bases:
                assert_pinned(base, f"{name} ({dockerfile.name})")
            assert service.get("pull_policy") == "build", f"{name}: a local build is never pulled"
        else:
            assert service.get("image"), f"{name} has no image"
            assert_pinned(service["image"], name)


def test_images_match_the_versions_the_project_pins(services):
    spark = {services[s]["image"] for s in services if s.startswith("spark")}
    assert spark == {f"apache/spark:{version('pyspark')}-scala2.12-java17-python3-ubuntu"}, (
        "the cluster runs the Spark that pyspark pins (3.5.6, Scala 2.12)"
    )
    broker_pom = (LOCAL / "maven" / "broker" / "pom.xml").read_text(encoding="utf-8")
    kafka_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", broker_pom).group(1)
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version}"
    assert services["kafka"]["image"].split(":")[1].startswith("4.")
    for name in ("minio", "minio-init"):
        release = r"RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z"
        assert re.fullmatch(r"minio/(minio|mc):" + release, services[name]["image"])
    dockerfile = REPO_ROOT / services["producer"]["build"]["dockerfile"]
    bases = re.findall(r"^FROM\s+python:(\d+\.\d+)\.", dockerfile.read_text(encoding="utf-8"), re.M)
    assert set(bases) == {"3.11"}, "the producer image runs the project's Python"


# --- start order ---------------------------------------------------------------------------------


def test_services_awaited_as_healthy_have_healthchecks(services):
    awaited = set()
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dependency}: wait for health or completion, not just a start"
            )
            if condition == "service_healthy":
                awaited.add(dependency)
                check = services[dependency].get("healthcheck")
                assert check and check.get("test"), f"{dependency} has no healthcheck"
            else:
                assert services[dependency].get("restart", "no") == "no", (
                    f"{dependency} is a one-shot and must not restart"
                )
    assert {"kafka", "minio", "spark-master"} <= awaited


def test_the_job_waits_for_kafka_topics_bucket_and_cluster(services):
    needs = services["spark-submit"]["depends_on"]
    assert needs["topics"]["condition"] == "service_completed_successfully"
    assert needs["minio-init"]["condition"] == "service_completed_successfully"
    for name in ("kafka", "spark-master", "spark-worker-1", "spark-worker-2"):
        assert needs[name]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


# --- Kafka ---------------------------------------------------------------------------------------


def test_kafka_runs_kraft_combined_mode_with_one_node(services):
    env = kafka_env(services)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "a kafka-storage random-uuid"
    for key, value in env.items():
        if key.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == "1", f"{key} must be 1 on a single node"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the topics service"


def test_kafka_listeners_are_consistent(services):
    env = kafka_env(services)
    listeners = listener_map(env["KAFKA_LISTENERS"])
    advertised = listener_map(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    inter_broker = env["KAFKA_INTER_BROKER_LISTENER_NAME"]

    assert set(listeners) <= set(protocols), "every listener has a security protocol"
    assert set(protocols.values()) == {"PLAINTEXT"}, "local stack: no auth (KAFKA_AUTH_MODE=none)"
    for name, address in advertised.items():
        assert name in listeners, f"advertised listener {name} is not in KAFKA_LISTENERS"
        assert name in protocols, f"advertised listener {name} has no security protocol"
        assert port_of(address) == port_of(listeners[name]), f"{name}: advertised port differs"
    assert controller in listeners and controller not in advertised
    assert inter_broker in advertised and inter_broker != controller
    ports = [port_of(a) for a in listeners.values()]
    assert len(ports) == len(set(ports)), "two listeners on one port"

    node, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert node == env["KAFKA_NODE_ID"]
    assert voter == f"kafka:{port_of(listeners[controller])}", "the voter is this node's controller"


def test_the_host_reaches_kafka_at_the_settings_default(services):
    env = kafka_env(services)
    advertised = listener_map(env["KAFKA_ADVERTISED_LISTENERS"])
    default = KafkaSettings().bootstrap_servers
    assert default == "localhost:9092"
    host_listener = [n for n, a in advertised.items() if a == default]
    assert host_listener, f"no listener advertises {default} to the host"
    published = dict(str(p).rsplit(":", 1) for p in services["kafka"]["ports"])
    container_port = str(port_of(listener_map(env["KAFKA_LISTENERS"])[host_listener[0]]))
    assert published.get(str(port_of(default))) == container_port, (
        "the host port of KAFKA_BOOTSTRAP_SERVERS' default maps to the listener it advertises"
    )


def test_containers_use_the_internal_listener(services):
    advertised = listener_map(kafka_env(services)["KAFKA_ADVERTISED_LISTENERS"])
    assert INTERNAL_BOOTSTRAP in advertised.values()
    users = [n for n, s in services.items() if "KAFKA_BOOTSTRAP_SERVERS" in environment(s)]
    assert set(users) == {"topics", "spark-submit", "producer"}
    for name in users:
        assert environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"] == INTERNAL_BOOTSTRAP, name
    assert INTERNAL_BOOTSTRAP in str(services["kafka"]["healthcheck"]["test"])


# --- project settings ----------------------------------------------------------------------------


def test_topic_variables_are_the_contracts(services):
    wanted = {CONTRACTS[s].topic_env: CONTRACTS[s].default_topic for s in STREAMS}
    for name in ("topics", "spark-submit", "producer"):
        env = environment(services[name])
        assert {k: env.get(k) for k in wanted} == wanted, f"{name}: topic variables differ"
    script = (LOCAL / "compose" / "create-topics.sh").read_text(encoding="utf-8")
    for variable in wanted:
        assert "${" + variable in script, f"create-topics.sh does not create {variable}"


def project_variables() -> set[str]:
    """Every environment variable the project's code reads."""
    pattern = re.compile(
        r"(?:env_(?:str|int|float|choice)\(\s*\w+,\s*|environ(?:\.get)?\(\s*|getenv\(\s*)"
        r"\"([A-Z][A-Z0-9_]+)\""
    )
    names = {c.topic_env for c in CONTRACTS.values()}
    for folder in ("emr_jobs", "producer", "scripts"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


#: Variables for the containers' own tools (Spark, S3A, MinIO, Python), not project settings.
PLATFORM_VARIABLES = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PYTHONPATH", "PYSPARK_PYTHON",
    "SPARK_MASTER_URL", "S3_ENDPOINT_URL", "SPARK_WORKER_MEMORY", "SPARK_WORKER_CORES",
    "LAKE_BUCKET", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
}


def test_project_variables_are_spelt_as_the_code_reads_them(services):
    known = project_variables()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "LAKE_URI", "SIM_VEHICLES", "TOPIC_PARTITIONS"} <= known
    for name, service in services.items():
        if name == "kafka":
            continue  # the broker image's own KAFKA_* properties
        for variable in environment(service):
            assert variable in known or variable in PLATFORM_VARIABLES, (
                f"{name}: {variable} is read by nothing in the project"
            )


def test_the_job_settings_are_valid_and_the_lake_is_s3a_on_the_bucket_minio_init_creates(services):
    env = environment(services["spark-submit"])
    job = JobSettings.from_env(env)
    kafka = KafkaSettings.from_env(env)
    assert job.lake_uri.startswith("s3a://")
    assert kafka.auth_mode == "none"
    bucket = environment(services["minio-init"])["LAKE_BUCKET"]
    assert job.lake_uri == f"s3a://{bucket}"
    assert '"lake/$$LAKE_BUCKET"' in str(services["minio-init"]["entrypoint"])


def test_s3a_points_at_minio_and_credentials_come_from_the_environment(services):
    env = environment(services["spark-submit"])
    minio_port = services["minio"]["command"][services["minio"]["command"].index("--address") + 1]
    assert env["S3_ENDPOINT_URL"] == f"http://minio{minio_port}"
    script = (LOCAL / "compose" / "submit-job.sh").read_text(encoding="utf-8")
    for setting in (
        'spark.hadoop.fs.s3a.endpoint="${S3_ENDPOINT_URL:?}"',
        "spark.hadoop.fs.s3a.path.style.access=true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled=false",
        "spark.hadoop.fs.s3a.aws.credentials.provider="
        "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    ):
        assert setting in script, f"submit-job.sh lacks {setting}"
    assert "access.key" not in script and "secret.key" not in script
    minio = environment(services["minio"])
    for name in ("spark-submit", "spark-worker-1", "spark-worker-2", "minio-init"):
        login = environment(services[name])
        assert login["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"], name
        assert login["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"], name


def test_minio_credentials_are_overridable_local_dev_defaults_and_no_aws_keys(services):
    raw = services["minio"]["environment"]
    for variable in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert re.fullmatch(r"\$\{" + variable + r":-[^}]+\}", raw[variable]), (
            f"{variable} must be overridable from the environment"
        )
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "LOCAL DEV DEFAULTS" in text
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text), "an AWS access key id"
    for name, service in services.items():
        for variable, value in (service.get("environment") or {}).items():
            if variable.startswith(("AWS_", "MINIO_ROOT_")):
                assert str(value).startswith("${MINIO_ROOT_"), f"{name}: {variable} is hard-coded"


# --- Spark ---------------------------------------------------------------------------------------


def test_spark_has_a_master_and_two_workers_with_2_gb_each(services):
    master = services["spark-master"]
    assert "org.apache.spark.deploy.master.Master" in master["command"]
    port = master["command"][master["command"].index("--port") + 1]
    url = f"spark://spark-master:{port}"
    for name in ("spark-worker-1", "spark-worker-2"):
        worker = services[name]
        assert "org.apache.spark.deploy.worker.Worker" in worker["command"]
        assert url in worker["command"]
        assert environment(worker)["SPARK_WORKER_MEMORY"] == "2g"
    assert environment(services["spark-submit"])["SPARK_MASTER_URL"] == url


def test_the_job_service_submits_emr_jobs_with_the_maven_resolved_jars(services):
    job = services["spark-submit"]
    mounts = {v.split(":")[1]: (LOCAL / v.split(":")[0]).resolve() for v in job["volumes"]}
    assert mounts["/opt/smartcity/jars/spark"] == SPARK_JARS_DIR
    assert mounts["/opt/smartcity/jars/s3a"] == S3A_JARS_DIR
    assert mounts["/opt/smartcity/app/emr_jobs"] == REPO_ROOT / "emr_jobs"
    script = (LOCAL / "compose" / "submit-job.sh").read_text(encoding="utf-8")
    assert '"$APP/emr_jobs/job.py"' in script
    assert '--master "${SPARK_MASTER_URL:?}"' in script
    assert "--py-files" in script and "--jars" in script
    assert "/opt/smartcity/jars" in script


def test_every_mounted_file_exists(services):
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if not source.startswith("."):
                continue  # a named volume
            path = (LOCAL / source).resolve()
            if path in (SPARK_JARS_DIR, S3A_JARS_DIR):
                continue  # made by `make setup`, which `make compose-up` runs first
            assert path.exists(), f"{name} mounts {source}, which does not exist"


def test_make_compose_up_and_down_call_this_file():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for target, verb in (("compose-up", "up"), ("compose-down", "down")):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", makefile, re.M)
        assert recipe, f"Makefile has no {target} target"
        assert recipe.group(1).startswith("docker compose -f local/docker-compose.yml " + verb)
