"""GPU work on Kubernetes: what a run that takes a `gpu` pool slot asks the cluster for.

Locally the `gpu` pool (deploy/dagster.yaml) only serialises GPU steps. On Kubernetes
(deploy/helm) each run is a pod started by the K8sRunLauncher, and a run whose job holds a `gpu`
pool asset (persona_adapter, flux_lora, synthetic_image_set, face_inventory on a diffusion or GAN
generator) must land on a GPU node: the `dagster-k8s/config` tag on those jobs gives their run pod
a node selector for GPU nodes, the toleration for their taint and one `nvidia.com/gpu`. Every
other launcher ignores the tag. The lines' jobs run their steps in the run's process, so the run
pod is where the GPU is needed; a step-level executor (k8s_job_executor, celery_k8s) reads the
same tag from the ops.
"""

import json
from typing import Any

GPU_POOL = "gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"

# The label NVIDIA's GPU feature discovery (the GPU operator) puts on nodes with a GPU, the taint
# GPU node pools carry (GKE, AKS, EKS with the NVIDIA device plugin) and the resource that the
# device plugin schedules: a GPU run gets a GPU node and one GPU of it.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
GPU_RESOURCES = {"limits": {"nvidia.com/gpu": "1"}}

# In dagster-k8s's user-defined config (snake_case names of the Kubernetes client's models).
GPU_K8S_CONFIG: dict[str, Any] = {
    "container_config": {"resources": GPU_RESOURCES},
    "pod_spec_config": {"node_selector": GPU_NODE_SELECTOR, "tolerations": GPU_TOLERATIONS},
}


def gpu_tags() -> dict[str, str]:
    """The tags of a job (its runs) or op (its step pod) that needs a GPU on Kubernetes."""
    return {K8S_CONFIG_TAG: json.dumps(GPU_K8S_CONFIG, sort_keys=True)}
