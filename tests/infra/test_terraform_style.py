"""infra/ parses, is formatted, and keeps the layout and conventions of STYLE.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

# Resource types whose AWS API has no tags (everything else must carry the module's tags).
UNTAGGABLE = {
    "aws_athena_named_query",
    "aws_cloudwatch_event_target",
    "aws_ecr_lifecycle_policy",
    "aws_emr_managed_scaling_policy",
    "aws_emr_security_configuration",
    "aws_glue_catalog_table",
    "aws_glue_catalog_table_optimizer",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_msk_configuration",
    "aws_route",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_sns_topic_policy",
    "aws_sns_topic_subscription",
}
OUTPUT_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def _module_dirs(tf):
    return [tf.INFRA] + [tf.MODULES_DIR / m for m in tf.MODULE_NAMES + tf.NESTED_MODULE_NAMES]


def _blocks_of(doc, kind: str):
    """``(type, name, body)`` of every ``resource``/``data`` block of a file's source."""
    for entry in doc.get(kind, []):
        for rtype, named in entry.items():
            for name, body in named.items():
                yield rtype, name, body


def _named_blocks(doc, kind: str):
    """``(name, body)`` of every ``variable``/``output``/``module`` block of a file's source."""
    for entry in doc.get(kind, []):
        yield from entry.items()


def _names(module, kind: str) -> set[str]:
    """The module's own ``variable``/``output``/``module`` names, as tfparse evaluated them."""
    return {a.split(".")[1] for a in module if re.fullmatch(kind + r"\.\w+", a)}


# ----------------------------------------------------------------------------------------- parsing


def test_every_tf_file_parses_with_python_hcl2(tf_file, tf):
    doc = tf.load(tf_file)
    assert doc, f"{tf_file} parsed to nothing"


@pytest.mark.parametrize("name", ["backend.tf.example", "terraform.tfvars.example"])
def test_example_files_parse(name, tf):
    assert tf.load(tf.INFRA / name)


def test_terraform_fmt_check_passes(tf):
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "no terraform binary on PATH: formatting is checked only where one is installed"
        )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(tf.INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
    )
    assert result.returncode == 0, (
        f"terraform fmt would reformat these files (run `terraform fmt -recursive infra`):\n"
        f"{result.stdout}{result.stderr}"
    )


# ------------------------------------------------------------------------------------------ layout


def test_each_module_has_main_variables_outputs_versions(module_name, tf):
    directory = tf.MODULES_DIR / module_name
    present = {p.name for p in directory.glob("*.tf")}
    assert set(tf.MODULE_FILES) <= present, (
        f"modules/{module_name} lacks {set(tf.MODULE_FILES) - present}"
    )
    assert present == set(tf.MODULE_FILES), (
        f"modules/{module_name} has extra files {present - set(tf.MODULE_FILES)}"
    )


def test_root_composes_one_module_per_concern_and_nothing_else(root, tf):
    assert _names(root, "module") == set(tf.MODULE_NAMES)
    for name in tf.MODULE_NAMES:
        assert root[f"module.{name}"]["source"] == f"./modules/{name}"
    own = [
        a
        for a, b in root.items()
        if b["__tfmeta"].get("type") in ("resource", "data") and not a.startswith("module.")
    ]
    assert not own, f"the root creates resources or reads data sources itself: {own}"
    assert {p.name for p in tf.INFRA.glob("*.tf")} == {
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
    }


def test_versions_pin_terraform_1_5_and_the_aws_provider_everywhere(tf):
    pins = {}
    for directory in _module_dirs(tf):
        (terraform,) = tf.load(directory / "versions.tf")["terraform"]
        assert re.fullmatch(r">= ?1\.(5|[6-9]|\d\d)(\.\d+)?", terraform["required_version"]), (
            terraform
        )
        (providers,) = terraform["required_providers"]
        aws = providers["aws"]
        assert aws["source"] == "hashicorp/aws"
        assert re.fullmatch(r"~> ?\d+\.\d+", aws["version"]), (
            f"{directory}: pin the provider, got {aws['version']}"
        )
        pins[directory.name] = (terraform["required_version"], aws["version"])
    assert len(set(pins.values())) == 1, f"modules pin different versions: {pins}"


def test_backend_example_uses_encrypted_s3_state(tf):
    (terraform,) = tf.load(tf.INFRA / "backend.tf.example")["terraform"]
    (backend,) = terraform["backend"]
    assert backend["s3"]["encrypt"] is True


def test_tfvars_example_sets_only_declared_variables(root, tf):
    example = tf.load(tf.INFRA / "terraform.tfvars.example")
    declared = _names(root, "variable")
    assert set(example) <= declared, f"undeclared: {set(example) - declared}"


# --------------------------------------------------------------------------- variables and outputs


def test_every_variable_has_description_type_default_in_that_order(tf):
    problems = []
    for directory in _module_dirs(tf):
        for name, block in _named_blocks(tf.load(directory / "variables.tf"), "variable"):
            keys = list(block)
            if keys[:3] != ["description", "type", "default"]:
                problems.append(f"{directory.name}/variables.tf: {name} starts with {keys[:3]}")
            elif not str(block["description"]).strip():
                problems.append(f"{directory.name}/variables.tf: {name} has an empty description")
    assert not problems, "\n".join(problems)


def test_every_output_is_described_and_named_thing_attribute(tf):
    problems = []
    for directory in _module_dirs(tf):
        for name, block in _named_blocks(tf.load(directory / "outputs.tf"), "output"):
            if not OUTPUT_NAME.match(name):
                problems.append(f"{directory.name}: output {name} is not {{thing}}_{{attribute}}")
            if not str(block.get("description", "")).strip():
                problems.append(f"{directory.name}: output {name} has no description")
    assert not problems, "\n".join(problems)


def test_root_outputs_cover_what_the_scripts_need(root):
    needed = {
        "msk_bootstrap_brokers_sasl_iam",
        "msk_cluster_arn",
        "lake_bucket_name",
        "artifacts_bucket_name",
        "logs_bucket_name",
        "emr_cluster_id",
        "ecr_repository_url",
        "glue_database_name",
        "athena_workgroup_name",
        "emr_job_environment",
        "ecs_topics_admin_task_definition_arn",
    }
    outputs = _names(root, "output")
    assert needed <= outputs, f"missing outputs: {needed - outputs}"


# --------------------------------------------------------------------------------------- resources


def test_a_resource_alone_of_its_type_in_a_module_is_named_this(tf):
    problems = []
    for directory in _module_dirs(tf):
        by_type: dict[str, list[str]] = {}
        for path in directory.glob("*.tf"):
            for rtype, name, _ in _blocks_of(tf.load(path), "resource"):
                by_type.setdefault(rtype, []).append(name)
        problems += [
            f"{directory.name}: {t}.{n[0]}"
            for t, n in by_type.items()
            if len(n) == 1 and n != ["this"]
        ]
        problems += [
            f"{directory.name}: {t} has several, one named this"
            for t, n in by_type.items()
            if len(n) > 1 and "this" in n
        ]
    assert not problems, "should be named `this` (or not, when there are several):\n" + "\n".join(
        problems
    )


def test_count_and_for_each_come_first_and_tags_last(tf):
    problems = []
    for path in tf.files:
        for rtype, name, body in _blocks_of(tf.load(path), "resource"):
            keys = list(body)
            meta = [k for k in keys if k in ("count", "for_each")]
            if meta and keys[0] not in meta:
                problems.append(
                    f"{path.relative_to(tf.INFRA)}: {rtype}.{name} starts with {keys[0]}"
                )
            if "tags" in keys and any(
                k not in ("depends_on", "lifecycle") for k in keys[keys.index("tags") + 1 :]
            ):
                problems.append(
                    f"{path.relative_to(tf.INFRA)}: {rtype}.{name} has arguments after tags"
                )
    assert not problems, "\n".join(problems)


def test_every_taggable_resource_merges_the_one_tags_map(root, tf):
    assert "tags" in root.locals, "the root defines local.tags"
    problems = [
        f"module {n} is not passed tags = local.tags"
        for n, c in _named_blocks(tf.load(tf.INFRA / "main.tf"), "module")
        if c.get("tags") != "${local.tags}"
    ]
    for module_name in tf.MODULE_NAMES + tf.NESTED_MODULE_NAMES:
        directory = tf.MODULES_DIR / module_name
        for path in directory.glob("*.tf"):
            problems += [
                f"{module_name}: module {n} is not passed tags = var.tags"
                for n, c in _named_blocks(tf.load(path), "module")
                if c.get("tags") != "${var.tags}"
            ]
            for rtype, name, body in _blocks_of(tf.load(path), "resource"):
                if rtype in UNTAGGABLE:
                    assert "tags" not in body, (
                        f"{rtype} has no tags in AWS; remove them from {name}"
                    )
                elif "var.tags" not in str(body.get("tags", "")):
                    problems.append(f"{module_name}: {rtype}.{name} does not carry var.tags")
    assert not problems, "\n".join(problems)


def test_the_emr_cluster_has_no_step_and_ignores_steps_submitted_by_scripts(modules, tf):
    assert "step" not in modules["emr"].one("aws_emr_cluster", "this"), (
        "a Terraform step block replaces the cluster; steps are submitted by a script"
    )
    # ignore_changes names attributes: the source says which (tfparse has no value for them).
    doc = tf.load(tf.MODULES_DIR / "emr" / "main.tf")
    (cluster,) = [b for t, _, b in _blocks_of(doc, "resource") if t == "aws_emr_cluster"]
    (lifecycle,) = cluster["lifecycle"]
    assert "step" in str(lifecycle["ignore_changes"])


def test_iam_star_resources_only_for_actions_without_resource_level_permissions(modules, tf):
    # The only actions AWS does not scope to a resource ARN, each with a reason in modules/iam.
    allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    problems = []
    documents = 0
    for module_name, module in modules.items():
        for address in module:
            if not address.startswith("data.aws_iam_policy_document."):
                continue
            name = address.rsplit(".", 1)[1]
            documents += 1
            for st in module.policy_statements(name):
                if "*" in st["resources"] and not st["actions"] <= allowed:
                    problems.append(
                        f"{module_name}: {name}/{st['sid']} grants {sorted(st['actions'])} on *"
                    )
                if any(a.endswith(":*") or a == "*" for a in st["actions"]):
                    problems.append(f"{module_name}: {name}/{st['sid']} uses a wildcard action")
    in_source = [
        n
        for p in tf.files
        for t, n, _ in _blocks_of(tf.load(p), "data")
        if t == "aws_iam_policy_document"
    ]
    assert documents == len(in_source) > 0, "every policy document of the source was checked"
    assert not problems, "\n".join(problems)
