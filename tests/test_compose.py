"""The compose stack (local/docker-compose.yml), checked statically: there is no Docker here.

The file must parse, name the services local/README.md names, agree with the project's settings
(ports, variable names, the contracts' topics, an Iceberg lake on s3a:// with its SQLite catalog
on a volume of the driver), mount the jar sets `make setup` resolves, pin every image, give every
awaited service a healthcheck, and configure Kafka's listeners consistently. The job's code must
import on the Spark image's Python, which local/spark/Dockerfile gives the job's packages
(pandas, numpy, pyarrow: the pins EMR installs), and the topics service must create every
contract's topic.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path, PurePosixPath

import pytest
import yaml
from settings_registry import settings_classes

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, DERIVED_STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.settings import AlertSettings, JobSettings
from scripts.artifacts import PYTHON_REQUIREMENTS, canonical_name, read_pins
from scripts.run_job import ICEBERG_JARS_DIR, S3A_JARS_DIR, SPARK_JARS_DIR

LOCAL = REPO_ROOT / "local"
COMPOSE_FILE = LOCAL / "docker-compose.yml"
#: The compose stack's documentation: the "Compose stack (Docker)" section.
README = LOCAL / "README.md"
#: The settings tables: the shared ones (top README), the producer's, the job's and its alerts'.
SETTINGS_READMES = (
    REPO_ROOT / "README.md",
    REPO_ROOT / "producer" / "README.md",
    REPO_ROOT / "emr_jobs" / "README.md",
)

#: Containers reach Kafka here; the host reaches it at KafkaSettings' default.
INTERNAL_BOOTSTRAP = "kafka:29092"
#: The apache/spark image's WORKDIR, owned by its `spark` user (apache/spark-docker Dockerfile).
SPARK_IMAGE_WORKDIR = "/opt/spark/work-dir"
#: The Python of the apache/spark python3 image (Ubuntu 22.04), which runs driver and executors.
SPARK_IMAGE_PYTHON = (3, 10)
#: The Spark services' image: the pinned apache/spark image plus the job's Python packages.
SPARK_DOCKERFILE = LOCAL / "spark" / "Dockerfile"
SPARK_SERVICES = ("spark-master", "spark-worker-1", "spark-worker-2", "spark-submit")


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
    """Service names in the first column of the tables in local/README.md's compose section."""
    names = re.findall(r"^\| `([a-z0-9-]+)` \|", readme_section("Compose stack (Docker)"), re.M)
    assert names, "local/README.md's compose section has no table of services"
    return names


def readme_section(title: str, readme: Path = README) -> str:
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    where = readme.relative_to(REPO_ROOT)
    assert match, f"{where} has no '## {title}' section"
    return match.group(1)


def readme_settings() -> set[str]:
    """The variables of the READMEs' settings tables: each "Settings" section (the shared
    settings in the top README, the producer's and the job's) and the job's "Alert settings"."""
    tables = "".join(readme_section("Settings", readme) for readme in SETTINGS_READMES)
    job_readme = (REPO_ROOT / "emr_jobs" / "README.md").read_text(encoding="utf-8")
    alerts = re.search(r"^### Alert settings\n(.*?)(?=^##|\Z)", job_readme, re.S | re.M)
    assert alerts, "emr_jobs/README.md has no '### Alert settings' section"
    tables += alerts.group(1)
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", tables, re.M))


def volume_mounts(service: dict) -> dict[str, str]:
    """Container path -> source (a named volume, or a path relative to local/)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


# --- the file and the README ---------------------------------------------------------------------


def test_the_compose_file_parses_and_defines_the_stack(compose, services):
    assert set(compose) <= {"name", "services", "volumes", "networks"} | {
        k for k in compose if k.startswith("x-")
    }
    for name in (
        "kafka",
        "topics",
        "minio",
        "minio-init",
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "spark-submit",
        "producer",
    ):
        assert name in services, f"service {name} is missing"


def test_every_service_the_readme_names_exists_and_every_service_is_documented(services):
    named = readme_compose_services()
    assert sorted(set(named)) == sorted(services)


def test_every_variable_taken_from_the_shell_is_documented_in_the_compose_section():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    passed = set(re.findall(r"\$\{(\w+)", text))
    assert {"LAKE_BUCKET", "LAKE_DATABASE", "JOB_TRIGGER", "MINIO_ROOT_USER"} <= passed
    section = readme_section("Compose stack (Docker)")
    missing = sorted(v for v in passed if f"`{v}`" not in section)
    assert not missing, f"local/README.md's compose section does not mention {missing}"


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


def dockerfile_bases(dockerfile) -> list[str]:
    return re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(encoding="utf-8"), re.M)


def test_images_match_the_versions_the_project_pins(services):
    assert {s for s in services if s.startswith("spark")} == set(SPARK_SERVICES)
    for name in SPARK_SERVICES:
        assert REPO_ROOT / services[name]["build"]["dockerfile"] == SPARK_DOCKERFILE, name
    assert dockerfile_bases(SPARK_DOCKERFILE) == [
        f"apache/spark:{version('pyspark')}-scala2.12-java17-python3-ubuntu"
    ], "the cluster runs the Spark that pyspark pins (3.5.6, Scala 2.12)"
    assert len({services[s]["image"] for s in SPARK_SERVICES}) == 1, "one image for all of Spark"
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
    """Every contract's topic, the derived ones (alerts, road conditions) included."""
    wanted = {CONTRACTS[s].topic_env: CONTRACTS[s].default_topic for s in ALL_STREAMS}
    assert {CONTRACTS[s].topic_env for s in DERIVED_STREAMS} == {
        "ALERTS_TOPIC",
        "ROAD_CONDITIONS_TOPIC",
    }
    for name in ("topics", "spark-submit", "producer"):
        env = environment(services[name])
        assert {k: env.get(k) for k in wanted} == wanted, f"{name}: topic variables differ"
    script = (LOCAL / "compose" / "create-topics.sh").read_text(encoding="utf-8")
    loop = re.search(r"^for topic in (.*?); do$", script, re.S | re.M)
    assert loop, "create-topics.sh has no `for topic in ...; do` loop"
    assert set(re.findall(r'"\$\{([A-Z_]+):\?\}"', loop.group(1))) == set(wanted), (
        "create-topics.sh creates exactly the contracts' topics"
    )


def test_the_topics_service_creates_every_contract_s_topic(services, tmp_path):
    """create-topics.sh run with the service's environment, a fake kafka-topics.sh recording
    what it is asked: each topic as scripts.topics would make it, then one describe of all."""
    calls = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n', encoding="utf-8")
    fake.chmod(0o755)
    script = (LOCAL / "compose" / "create-topics.sh").read_text(encoding="utf-8")
    assert script.count("/opt/kafka/bin/kafka-topics.sh") == 2
    mounted = volume_mounts(services["topics"])
    assert mounted["/opt/smartcity/create-topics.sh"] == "./compose/create-topics.sh"
    copy = tmp_path / "create-topics.sh"
    copy.write_text(script.replace("/opt/kafka/bin/kafka-topics.sh", str(fake)), encoding="utf-8")
    env = {k: str(v) for k, v in environment(services["topics"]).items()}
    result = subprocess.run(
        ["sh", str(copy)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *creates, describe = calls.read_text(encoding="utf-8").splitlines()
    created = [c.split("--topic ")[1].split()[0] for c in creates]
    assert sorted(created) == sorted(CONTRACTS[s].default_topic for s in ALL_STREAMS)
    for line in creates:
        assert "--create --if-not-exists" in line
        assert "--partitions 3 --replication-factor 1 --config retention.ms=604800000" in line
    assert describe.endswith("--describe --topic " + ",".join(created))


def declared_variables(*classes: type) -> set[str]:
    """The variables settings classes declare, with the contracts' topic variables for Kafka."""
    names = {variable for cls in classes for variable, _ in cls.variables()}
    if KafkaSettings in classes:
        names |= {c.topic_env for c in CONTRACTS.values()}
    return names


def project_variables() -> set[str]:
    """Every environment variable the project's code reads: the settings classes' variables,
    and the few read directly from the environment."""
    pattern = re.compile(r"(?:environ(?:\.get)?\(\s*|getenv\(\s*)\"([A-Z][A-Z0-9_]+)\"")
    names = declared_variables(*settings_classes())
    for folder in ("emr_jobs", "producer", "scripts"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


#: Variables for the containers' own tools (Spark, S3A, MinIO, Python), not project settings.
PLATFORM_VARIABLES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "PYTHONPATH",
    "PYSPARK_PYTHON",
    "SPARK_MASTER_URL",
    "S3_ENDPOINT_URL",
    "SPARK_WORKER_MEMORY",
    "SPARK_WORKER_CORES",
    "LAKE_BUCKET",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
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
    # The Iceberg catalog: JDBC on a SQLite file (no Glue off AWS), the default database.
    assert job.catalog == "jdbc"
    assert job.catalog_uri.startswith("jdbc:sqlite:/")
    assert job.database == JobSettings().database


def test_the_job_service_passes_only_settings_the_job_reads_and_the_readme_documents(services):
    env = environment(services["spark-submit"])
    JobSettings.from_env(env)
    KafkaSettings.from_env(env)
    reads = declared_variables(JobSettings, AlertSettings, KafkaSettings)
    assert {"LAKE_URI", "LAKE_CATALOG", "LAKE_CATALOG_URI", "LAKE_DATABASE"} <= reads
    settings = set(env) - PLATFORM_VARIABLES
    unread = sorted(settings - reads)
    assert not unread, f"spark-submit passes {unread}, which the job's settings never read"
    undocumented = sorted(settings - readme_settings())
    assert not undocumented, f"the READMEs' settings tables lack {undocumented}"


def test_the_catalog_is_a_sqlite_file_on_a_named_volume_that_only_the_driver_opens(
    compose, services
):
    job_service = services["spark-submit"]
    catalog = PurePosixPath(
        JobSettings.from_env(environment(job_service)).catalog_uri.removeprefix("jdbc:sqlite:")
    )
    mounts = volume_mounts(job_service)
    assert str(catalog.parent) in mounts, f"{catalog} is not on a volume: lost with the container"
    volume = mounts[str(catalog.parent)]
    assert not volume.startswith((".", "/")), "a named volume, not a host folder"
    assert volume in (compose.get("volumes") or {}), f"volume {volume} is not declared"
    # A new named volume takes the owner of the image folder it is mounted on; the job runs as
    # the image's `spark` user, which owns only the working directory.
    assert str(catalog.parent) == SPARK_IMAGE_WORKDIR
    assert job_service.get("user") is None and job_service.get("working_dir") is None
    # The driver (client mode, this container) is the catalog's only user; executors write
    # data files to MinIO and never open it. MinIO's data and the catalog persist together.
    script = (LOCAL / "compose" / "submit-job.sh").read_text(encoding="utf-8")
    assert "--deploy-mode client" in script
    users = [n for n, s in services.items() if volume in volume_mounts(s).values()]
    assert users == ["spark-submit"]
    assert "minio-data" in volume_mounts(services["minio"]).values()
    assert 'mkdir -p "$(dirname "$catalog_file")"' in script, "SQLite makes no directories"


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
    mounts = {t: (LOCAL / s).resolve() for t, s in volume_mounts(job).items() if s[0] == "."}
    assert mounts["/opt/smartcity/jars/spark"] == SPARK_JARS_DIR
    assert mounts["/opt/smartcity/jars/iceberg"] == ICEBERG_JARS_DIR
    assert mounts["/opt/smartcity/jars/s3a"] == S3A_JARS_DIR
    assert mounts["/opt/smartcity/app/emr_jobs"] == REPO_ROOT / "emr_jobs"
    script = (LOCAL / "compose" / "submit-job.sh").read_text(encoding="utf-8")
    assert '"$APP/emr_jobs/job.py"' in script
    assert '--master "${SPARK_MASTER_URL:?}"' in script
    assert "--py-files" in script and "--jars" in script
    assert "/opt/smartcity/jars" in script


def setup_jar_sets() -> list[str]:
    """The jar sets scripts/setup.sh resolves into .cache/jars/<set> (one pom each)."""
    script = (REPO_ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    match = re.search(r"^for set in ([a-z0-9 -]+); do$", script, re.M)
    assert match, "setup.sh has no `for set in ...` loop over the jar sets"
    assert "OUT=$CACHE/jars/$set" in script and "POM=local/maven/$set/pom.xml" in script
    return match.group(1).split()


def test_the_job_mounts_exactly_the_jar_sets_setup_resolves_and_puts_each_on_its_classpath(
    services,
):
    mounts = volume_mounts(services["spark-submit"])
    jar_dirs = {
        t: (LOCAL / s).resolve()
        for t, s in mounts.items()
        if s.startswith(".") and (LOCAL / s).resolve().parent == REPO_ROOT / ".cache" / "jars"
    }
    assert set(jar_dirs.values()) == {SPARK_JARS_DIR, ICEBERG_JARS_DIR, S3A_JARS_DIR}, (
        "Kafka source, Iceberg runtime with the SQLite driver, and S3A: what run_job uses"
    )
    for volume in services["spark-submit"]["volumes"]:
        if volume.split(":")[1] in jar_dirs:
            assert volume.endswith(":ro"), f"{volume}: the job never writes its jars"
    sets = setup_jar_sets()
    script = (LOCAL / "compose" / "submit-job.sh").read_text(encoding="utf-8")
    jars_line = re.search(r"^jars=\$\(ls (.+) \| paste -sd, -\)$", script, re.M)
    assert jars_line, "submit-job.sh builds no --jars list"
    for target, source in jar_dirs.items():
        name = source.name
        assert name in sets, f"setup.sh does not resolve .cache/jars/{name}"
        assert (LOCAL / "maven" / name / "pom.xml").is_file(), f"no pom for the {name} jars"
        assert target == f"/opt/smartcity/jars/{name}"
        assert f'"$JARS"/{name}/*.jar' in jars_line.group(1), f"{name} jars not on --jars"
    # The job fails with a clear message, not a ClassNotFoundException, when a set is missing.
    for jar in (
        "spark/spark-sql-kafka-0-10_",
        "iceberg/iceberg-spark-runtime-",
        "iceberg/sqlite-jdbc-",
        "s3a/hadoop-aws-",
    ):
        assert jar in script, f"submit-job.sh does not check for {jar}*.jar"
    # The Iceberg runtime is built for the cluster's Spark and Scala.
    pom = (LOCAL / "maven" / "iceberg" / "pom.xml").read_text(encoding="utf-8")
    spark_minor = ".".join(version("pyspark").split(".")[:2])
    assert f"<artifactId>iceberg-spark-runtime-{spark_minor}_2.12</artifactId>" in pom
    assert "<artifactId>sqlite-jdbc</artifactId>" in pom


def test_every_mounted_file_exists(services):
    for name, service in services.items():
        for source in volume_mounts(service).values():
            if not source.startswith("."):
                continue  # a named volume
            path = (LOCAL / source).resolve()
            if path in (SPARK_JARS_DIR, ICEBERG_JARS_DIR, S3A_JARS_DIR):
                continue  # made by `make setup`, which `make compose-up` runs first
            assert path.exists(), f"{name} mounts {source}, which does not exist"


#: Standard-library names that Python 3.11 added (the image's Python is 3.10).
PY311_ONLY = {
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "verify", "EnumCheck"},
    "typing": {
        "Self",
        "LiteralString",
        "Never",
        "assert_never",
        "reveal_type",
        "Required",
        "NotRequired",
        "TypeVarTuple",
        "Unpack",
        "dataclass_transform",
    },
    "asyncio": {"TaskGroup", "timeout", "Runner"},
    "tomllib": set(),
    "wsgiref.types": set(),
}


def image_packages() -> set[str]:
    """Import names of the distributions local/spark/Dockerfile installs (what .venv has of
    them: the same pins), e.g. pandas, numpy, pyarrow, dateutil."""
    pinned = {canonical_name(n) for n in read_pins()}
    return {
        module
        for module, dists in packages_distributions().items()
        if any(canonical_name(d) in pinned for d in dists)
    }


def py310_problems(source: str, where: str, packages: set[str] = frozenset()) -> list[str]:
    """What stops a module importing on Python 3.10 in the Spark image, one line each; the image
    has the standard library, pyspark, the job itself and ``packages``."""
    try:
        tree = ast.parse(source, feature_version=SPARK_IMAGE_PYTHON)
    except SyntaxError as err:
        return [f"{where}:{err.lineno}: not Python 3.10 syntax ({err.msg})"]
    problems = []
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name] = alias.name
                if PY311_ONLY.get(alias.name) == set():
                    problems.append(f"{where}:{node.lineno}: {alias.name} is Python 3.11+")
        elif isinstance(node, ast.ImportFrom) and node.module in PY311_ONLY and not node.level:
            new = PY311_ONLY[node.module]
            for alias in node.names:
                if not new or alias.name in new:
                    problems.append(f"{where}:{node.lineno}: {node.module}.{alias.name} is 3.11+")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.attr in PY311_ONLY.get(modules.get(node.value.id, ""), set())
        ):
            problems.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr} is 3.11+")
    available = sys.stdlib_module_names | {"__future__", "pyspark", "emr_jobs"} | set(packages)
    for node in tree.body:  # module level: what the driver and executors import from the zip
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in available:
                problems.append(f"{where}:{node.lineno}: imports {name}, not in the image")
    return problems


def test_the_job_imports_on_the_spark_images_python(services):
    """Driver and executors run the image's Python 3.10: no 3.11 syntax or standard-library
    names, and nothing outside the standard library but pyspark and the packages the image adds
    (pandas, numpy, pyarrow and their dependencies)."""
    assert dockerfile_bases(SPARK_DOCKERFILE)[0].endswith("-python3-ubuntu")
    packages = image_packages()
    assert {"pandas", "numpy", "pyarrow"} <= packages
    problems = [
        problem
        for path in sorted((REPO_ROOT / "emr_jobs").rglob("*.py"))
        for problem in py310_problems(
            path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)), packages
        )
    ]
    assert not problems, "the compose job would not start:\n" + "\n".join(problems)


def test_every_spark_service_runs_the_image_with_the_job_s_python_packages(services):
    """The driver imports pandas (emr_jobs/alerts.py) and the executors' Python workers run
    applyInPandasWithState: the master, both workers and spark-submit share one built image."""
    builds = {name: services[name].get("build") for name in SPARK_SERVICES}
    assert len({str(b) for b in builds.values()}) == 1 and builds["spark-submit"], builds
    for name in SPARK_SERVICES:
        assert services[name]["pull_policy"] == "build", f"{name}: a local build is never pulled"
        assert services[name]["image"] == "smartcity-spark:compose"


def test_the_spark_image_installs_the_pins_emr_installs_as_the_base_image_s_user():
    text = SPARK_DOCKERFILE.read_text(encoding="utf-8")
    requirements = PYTHON_REQUIREMENTS.relative_to(REPO_ROOT).as_posix()
    (copy,) = re.findall(r"^COPY\s+(\S+)\s+(\S+)$", text, re.M)
    assert copy[0] == requirements, "the one requirements file of EMR's bootstrap action"
    run = " ".join(re.findall(r"^RUN\s+(.*?)(?<!\\)$", text, re.M | re.S)).replace("\\\n", " ")
    assert re.search(rf"python3 -m pip install .*--only-binary=:all: .*-r {copy[1]}\b", run)
    assert 'python3 -c "import numpy, pandas, pyarrow"' in run
    # The base image's user owns the working directory, where the catalog's volume is mounted.
    users = re.findall(r"^USER\s+(\S+)$", text, re.M)
    assert users[-1] == "spark" and "WORKDIR" not in text and "ENTRYPOINT" not in text
    # Only that file reaches the builder.
    ignore = (SPARK_DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    rules = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert rules == ["*", f"!{requirements}"]


def test_the_python_310_check_finds_what_it_looks_for():
    source = (
        "import datetime\nimport tomllib\nimport boto3\nfrom datetime import UTC, timedelta\n"
        "from typing import Any, Self\n\ndef f():\n    import yaml\n    return datetime.UTC\n"
    )
    assert py310_problems(source, "m.py") == [
        "m.py:2: tomllib is Python 3.11+",
        "m.py:4: datetime.UTC is 3.11+",
        "m.py:5: typing.Self is 3.11+",
        "m.py:9: datetime.UTC is 3.11+",
        "m.py:3: imports boto3, not in the image",
    ]
    [syntax] = py310_problems("try:\n    pass\nexcept* ValueError:\n    pass\n", "m.py")
    assert syntax.startswith("m.py:") and "not Python 3.10 syntax" in syntax
