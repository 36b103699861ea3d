"""deploy/helm/values.yaml and deploy/Dockerfile mean what they say, with no cluster, no helm and
no Docker engine here: the instance config the chart renders from the values (its templates,
ported below for the branches the values use, and its values schema's key names, for the
sections they set) is loaded through Dagster's own instance loader and each configurable class's
own config type; the K8sRunLauncher built from it makes the run pod a GPU job gets (node
selector, toleration, nvidia.com/gpu) from the jobs' dagster-k8s/config tags; and the user-code
deployment's `dagster api grpc` arguments load our Definitions.

No installed package ships the chart's values.schema.json (the chart is not on PyPI), so the key
names of the sections used are held to the chart's schema models (helm/dagster/schema in
dagster-io/dagster, Extra.forbid) as listed in CHART_KEYS.
"""

import copy
import json
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._cli.api import grpc_command
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module
from dagster._serdes.config_class import ConfigurableClassData, class_from_code_pointer
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_user_defined_k8s_config

from synth_pipelines.definitions import build_definitions
from synth_pipelines.lines.gpu import GPU_POOL, K8S_CONFIG_TAG
from synth_pipelines.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
VALUES = DEPLOY / "helm" / "values.yaml"
RELEASE, NAMESPACE = "dagster", "synth"
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome
IMAGE = "registry.example.org/synth/synth-pipelines:0.1.0"

# The chart's values schema for the sections the values set: the keys each model accepts.
CHART_KEYS = {
    "k8sRunLauncher": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
        "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
        "resources", "failPodOnRunFailure", "schedulerName", "securityContext", "runK8sConfig",
    },
    "runK8sConfig": {
        "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig",
        "jobMetadata",
    },
    "s3ComputeLogManager": {
        "bucket", "localDir", "prefix", "useSsl", "verify", "verifyCertPath", "endpointUrl",
        "skipEmptyFiles", "uploadInterval", "uploadExtraArgs", "showUrlOnly", "region",
    },
    "postgresql": {
        "enabled", "image", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
        "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
    },
    "queuedRunCoordinator": {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
        "dequeueNumWorkers", "dequeueUseThreads",
    },
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
    "deployment": {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "port",
        "includeConfigInLaunchedRuns", "volumes", "volumeMounts", "env", "envConfigMaps",
        "envSecrets", "initContainers", "sidecarContainers", "annotations", "nodeSelector",
        "affinity", "tolerations", "podSecurityContext", "securityContext", "resources",
        "labels", "schedulerName", "readinessProbe", "livenessProbe", "startupProbe", "service",
    },
}  # fmt: skip


class ChartError(ValueError):
    """What `helm install` would refuse: a key the chart's values schema does not have."""


def keys(section: dict, model: str) -> dict:
    unknown = sorted(set(section) - CHART_KEYS[model])
    if unknown:
        raise ChartError(f"{model}: unknown key(s) {unknown}")
    return section


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render_instance(values: dict) -> dict[str, Any]:
    """The dagster.yaml of the chart's configmap-instance.yaml for `values`, release RELEASE in
    NAMESPACE (the branches used: external PostgreSQL, K8sRunLauncher, QueuedRunCoordinator,
    S3ComputeLogManager, pools, run monitoring and retries)."""
    pg = keys(values["postgresql"], "postgresql")
    assert not pg["enabled"], "the values use an external PostgreSQL"
    postgres = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg["postgresqlParams"],
            **({"scheme": pg["postgresqlScheme"]} if pg.get("postgresqlScheme") else {}),
        }
    }
    storage = {
        f"{kind}_storage": {
            "module": f"dagster_postgres.{module}",
            "class": cls,
            "config": postgres,
        }
        for kind, module, cls in [
            ("schedule", "schedule_storage", "PostgresScheduleStorage"),
            ("run", "run_storage", "PostgresRunStorage"),
            ("event_log", "event_log", "PostgresEventLogStorage"),
        ]
    }

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = keys(launcher["config"]["k8sRunLauncher"], "k8sRunLauncher")
    run_launcher: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": RELEASE,
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    for key in ("envConfigMaps", "envSecrets"):
        if k8s.get(key):
            run_launcher[snake(key)] = [item["name"] for item in k8s[key] if "name" in item]
    for key in ("envVars", "volumeMounts", "volumes", "labels", "resources", "securityContext"):
        if k8s.get(key):
            run_launcher[snake(key)] = k8s[key]
    if k8s.get("runK8sConfig"):
        run_k8s = keys(k8s["runK8sConfig"], "runK8sConfig")
        run_launcher["run_k8s_config"] = {snake(k): v for k, v in run_k8s.items() if v}

    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = keys(coordinator["config"]["queuedRunCoordinator"], "queuedRunCoordinator")

    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager"
    s3 = keys(logs["config"]["s3ComputeLogManager"], "s3ComputeLogManager")

    instance: dict[str, Any] = {
        "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        **storage,
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": run_launcher,
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {snake(k): v for k, v in queued.items()},
        },
        "compute_logs": {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {snake(k): v for k, v in s3.items()},
        },
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        pools = keys(concurrency.get("pools", {}), "pools")
        runs = keys(concurrency.get("runs", {}), "runs")
        instance["concurrency"] = {
            "pools": {snake(k): v for k, v in pools.items()},
            "runs": {snake(k): v for k, v in runs.items() if v},
        }
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    if monitoring["enabled"]:
        instance["run_monitoring"] = {snake(k): v for k, v in monitoring.items()}
    retries = values["dagsterDaemon"]["runRetries"]
    if retries["enabled"]:
        instance["run_retries"] = {snake(k): v for k, v in retries.items()}
    return instance


def load_instance_config(values: dict, tmp_path: Path) -> dict[str, Any]:
    """`values` rendered, then loaded as the daemon loads dagster.yaml (the instance schema),
    and every configurable class's config processed by its own config type; the processed
    configs, by section."""
    rendered = render_instance(values)
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(rendered))
    loaded, _ = dagster_instance_config(str(home))
    processed = {}
    for section in ("run_storage", "event_log_storage", "schedule_storage", "run_launcher",
                    "compute_logs", "run_coordinator", "scheduler"):  # fmt: skip
        # As the instance resolves a class (dagster.core.* names dagster._core.*).
        data = ConfigurableClassData(loaded[section]["module"], loaded[section]["class"], "{}")
        cls = class_from_code_pointer(data.module_name, data.class_name)
        result = process_config(cls.config_type(), loaded[section].get("config") or {})
        assert result.success, (section, [error.message for error in result.errors])
        processed[section] = result.value
    processed["instance"] = loaded
    return processed


@pytest.fixture
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture
def pg_password(monkeypatch) -> None:
    # What the chart injects from global.postgresqlSecretName into every Dagster container.
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "from-the-secret")


def test_the_rendered_instance_loads_and_says_what_the_values_say(
    values, tmp_path, pg_password
) -> None:
    config = load_instance_config(values, tmp_path)
    for section in ("run_storage", "event_log_storage", "schedule_storage"):
        db = config[section]["postgres_db"]
        assert db["hostname"] == "postgres.example.internal"
        assert db["password"] == "from-the-secret"  # from the secret, not the values
        assert db["scheme"] == "postgresql+psycopg2"
        assert db["params"] == {"sslmode": "require"}
    launcher = config["run_launcher"]
    assert launcher["job_namespace"] == NAMESPACE
    assert launcher["env_secrets"] == ["synth-settings"]
    assert launcher["postgres_password_secret"] == "synth-dagster-postgresql"
    assert launcher["run_k8s_config"]["job_spec_config"] == {"ttlSecondsAfterFinished": 86400}
    logs = config["compute_logs"]
    assert (logs["bucket"], logs["prefix"], logs["region"]) == (
        "synth-dagster-logs",
        "compute-logs",
        "eu-west-1",
    )
    instance = config["instance"]
    assert instance["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    assert instance["concurrency"]["runs"] == {"max_concurrent_runs": 8}
    assert instance["run_retries"] == {"enabled": True, "max_retries": 2}


def test_the_s3_compute_log_manager_is_built_from_it(values, tmp_path, pg_password) -> None:
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    config = load_instance_config(values, tmp_path)["compute_logs"]
    manager = S3ComputeLogManager(**config)
    assert manager._s3_bucket == "synth-dagster-logs"
    assert manager._s3_prefix == "compute-logs"


def mutate(values: dict, path: str, value: Any) -> dict:
    """A copy of `values` with the key at dotted `path` set to `value`, or renamed when
    `value` is a ("rename", new_name) pair."""
    out = copy.deepcopy(values)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if isinstance(value, tuple) and value[0] == "rename":
        node[value[1]] = node.pop(last)
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        # Key names the chart's schema does not have: helm refuses them.
        ("computeLogManager.config.s3ComputeLogManager.bucket", ("rename", "bukcet"), ChartError),
        ("runLauncher.config.k8sRunLauncher.envSecrets", ("rename", "envSecret"), ChartError),
        ("runLauncher.config.k8sRunLauncher.runK8sConfig.jobSpecConfig",
         ("rename", "jobSpec"), ChartError),
        ("postgresql.postgresqlHost", ("rename", "postgresHost"), ChartError),
        # Values the chart passes on and Dagster's config types refuse.
        ("runLauncher.config.k8sRunLauncher.loadInclusterConfig", "yes", AssertionError),
        ("postgresql.service.port", "five-four-three-two", AssertionError),
        ("computeLogManager.config.s3ComputeLogManager.useSsl", "sometimes", AssertionError),
        ("concurrency.pools.granularity", "step", dg.DagsterInvalidConfigError),
        ("dagsterDaemon.runRetries.maxRetries", "two", dg.DagsterInvalidConfigError),
    ],
)  # fmt: skip
def test_a_real_mistake_in_the_values_is_refused(
    values, tmp_path, pg_password, path, value, error
) -> None:
    with pytest.raises(error):
        load_instance_config(mutate(values, path, value), tmp_path)


# --- the run pods: GPU jobs on GPU nodes -----------------------------------------------------


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def launcher_from(values: dict, tmp_path: Path) -> K8sRunLauncher:
    """The K8sRunLauncher of the rendered instance, out of the cluster: the values' config with
    a kubeconfig naming an address nothing answers on (nothing is sent to it)."""
    config = dict(load_instance_config(values, tmp_path)["run_launcher"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    return K8sRunLauncher(**config)


def run_pod(launcher: K8sRunLauncher, job: dg.JobDefinition):
    """The Kubernetes Job the launcher creates for a run of `job`, as _launch_k8s_job_with_args
    builds it (the run's tags are the job's)."""
    run = dg.DagsterRun(job_name=job.name, run_id="0" * 36, tags=dict(job.tags))
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    return construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name=f"dagster-run-{job.name.replace('_', '-')}",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
    )


def gpu_jobs(defs: dg.Definitions) -> dict[str, bool]:
    """Each job of `defs` → whether one of its assets takes a `gpu` pool slot."""
    out = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):  # the implicit asset job: no run is launched for it
            continue
        pools = {getattr(node.definition, "pool", None) for node in job.graph.node_dict.values()}
        out[job.name] = GPU_POOL in pools
    return out


@pytest.mark.parametrize("generator", ["simulator", "diffusers"])
def test_gpu_runs_land_on_gpu_nodes_and_others_do_not(
    values, tmp_path, pg_password, synth_home, monkeypatch, generator
) -> None:
    monkeypatch.setenv("SYNTH_FACE_GENERATOR", generator)
    defs = build_definitions(Settings.from_env())
    launcher = launcher_from(values, tmp_path)
    needs_gpu = gpu_jobs(defs)
    assert needs_gpu["persona_training_job"] and needs_gpu["flux_lora_job"]
    assert needs_gpu["face_inventory_refill"] == (generator == "diffusers")
    assert not needs_gpu["dataset_package_job"] and not needs_gpu["partition_retention_job"]
    for name, gpu in needs_gpu.items():
        job = defs.resolve_job_def(name)
        # The tag is what dagster-k8s reads, and it parses (a bad shape raises here).
        assert (K8S_CONFIG_TAG in job.tags) == gpu, name
        get_user_defined_k8s_config(dict(job.tags))
        pod = run_pod(launcher, job).spec.template.spec
        container = pod.containers[0]
        # Every run: the values' requests and the settings secret.
        assert container.resources.requests == {"cpu": "2", "memory": "4Gi"}, name
        assert "synth-settings" in [s.secret_ref.name for s in container.env_from or []]
        assert container.image == IMAGE
        if gpu:
            assert container.resources.limits == {"nvidia.com/gpu": "1"}, name
            assert pod.node_selector == {"nvidia.com/gpu.present": "true"}, name
            assert [(t.key, t.operator, t.effect) for t in pod.tolerations] == [
                ("nvidia.com/gpu", "Exists", "NoSchedule")
            ], name
        else:
            assert not container.resources.limits and not pod.node_selector, name
            assert not pod.tolerations, name


def test_a_misspelled_kubernetes_field_in_the_run_config_is_refused(
    values, tmp_path, pg_password, synth_home
) -> None:
    bad = mutate(
        values,
        "runLauncher.config.k8sRunLauncher.runK8sConfig.containerConfig",
        {"resorces": {"requests": {"cpu": "2"}}},
    )
    job = build_definitions(Settings.from_env()).resolve_job_def("dataset_package_job")
    with pytest.raises(Exception, match="resorces"):
        run_pod(launcher_from(bad, tmp_path), job)


def test_a_misspelled_field_in_the_gpu_tag_is_refused(values, tmp_path, pg_password) -> None:
    tags = {
        K8S_CONFIG_TAG: json.dumps({"pod_spec_config": {"node_selectr": {"gpu": "true"}}}),
    }
    job = dg.JobDefinition(graph_def=dg.GraphDefinition(name="g", node_defs=[]), tags=tags)
    with pytest.raises(Exception, match="node_selectr"):
        run_pod(launcher_from(values, tmp_path), job)


# --- the user-code deployment and its image ---------------------------------------------------


def test_the_user_code_deployment_serves_our_definitions(values) -> None:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    deployment = keys(deployments[0], "deployment")
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert {"name": "synth-settings"} in deployment["envSecrets"]
    # The arguments parse as `dagster api grpc`'s own options, and name a module...
    params = grpc_command.make_context("grpc", list(deployment["dagsterApiGrpcArgs"])).params
    assert params["module_name"] == "synth_pipelines.definitions"
    # ...that loads our Definitions the way `dagster api grpc -m` does (workspace.yaml's too).
    targets = loadable_targets_from_python_module(params["module_name"], None)
    assert [type(target.target_definition) for target in targets] == [dg.Definitions]
    workspace = yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == params["module_name"]
    jobs = {job.name for job in targets[0].target_definition.resolve_all_job_defs()}
    assert {"partition_retention_job", "dataset_package_job", "flux_lora_job"} <= jobs


def test_the_image_runs_what_the_deployment_names_and_installs_cpu_torch_first(values) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[-2:] == deployment["dagsterApiGrpcArgs"]
    assert cmd[cmd.index("-p") + 1] == str(deployment["port"])
    runs = re.findall(r"^RUN (.*)$", dockerfile.replace("\\\n", " "), re.M)
    torch_at = next(i for i, run in enumerate(runs) if '"torch==${TORCH_VERSION}"' in run)
    package_at = next(i for i, run in enumerate(runs) if 'pip install ".[ml]"' in run)
    assert torch_at < package_at
    assert re.search(
        r"^ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu$", dockerfile, re.M
    )
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    assert re.search(r"torch==\$\{TORCH_VERSION\}", dockerfile)
    torch_pin = re.search(r"^ARG TORCH_VERSION=(\S+)$", dockerfile, re.M).group(1)
    makefile = (DEPLOY.parent / "Makefile").read_text()
    assert f"torch=={torch_pin}" in makefile  # the same CPU build the Makefile installs
    assert '"dagster-k8s==' in pyproject  # the run pods load the K8sRunLauncher from the image
