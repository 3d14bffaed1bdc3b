"""Container and cluster files, validated without a Docker engine or a cluster.

The real tools where they run without one: hadolint on the Dockerfile, Docker Compose's own ``config``
(interpolation, merging and the compose-spec schema) and the Kubernetes OpenAPI schemas of
kubernetes-validate, strict (unknown fields fail). Then the facts that tie the files to the code: every
MUONGAN_* variable is a real setting with a valid value, probes and health checks hit the service's
routes on the port it listens on, selectors and autoscaler targets match, the metric the Prometheus
autoscaler reads is one the service exports. All tools come from the project's dev extra.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.http.metrics import Metrics
from service.http.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
K8S = ROOT / "deploy" / "k8s"
PORT = 8000
# The oldest Kubernetes still common in production clusters, and the newest schemas shipped.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def _tool(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def _settings_from(env: dict[str, str]) -> Settings:
    """Build Settings from MUONGAN_* variables exactly as the service would; fails on an unknown name."""
    unknown = {key for key in env if key.removeprefix("MUONGAN_").lower() not in Settings.model_fields}
    assert not unknown and all(key.startswith("MUONGAN_") for key in env), f"not settings: {sorted(unknown)}"
    return Settings.model_validate({key.removeprefix("MUONGAN_").lower(): value for key, value in env.items()})


# --- Dockerfile -------------------------------------------------------------------------------------------


def _stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped) by stage name."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in (line.strip() for line in text.splitlines()):
        if line.upper().startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        if line and not line.startswith("#"):
            current.append(line)
    return stages


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/nginx/Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    result = _tool("hadolint", "--failure-threshold", "style", dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_images_have_no_training_code_and_run_unprivileged() -> None:
    stages = _stages()
    assert list(stages) == [
        "runtime",
        "builder-base",
        "builder",
        "builder-gpu",
        "builder-train",
        "train",
        "service",
        "serve-gpu",
        "serve",
    ]
    # One Python base for every image, given as a build argument: no CUDA base image, nothing else pulled.
    for name, lines in stages.items():
        base = lines[0].split()[1]
        assert base == "${PYTHON_IMAGE}" or base in list(stages)[: list(stages).index(name)], lines[0]
    for name in ("builder-base", "builder", "builder-gpu", "runtime", "service", "serve-gpu", "serve"):
        lines = " ".join(stages[name])
        assert "training" not in lines and "[train" not in lines and "tensorflow" not in lines.lower()
    gpu = " ".join(stages["builder-gpu"])
    assert "uninstall onnxruntime" in gpu and "onnxruntime-gpu[cuda,cudnn]==" in gpu
    assert stages["serve"][:2] == ["FROM service AS serve", "COPY --from=builder /opt/venv /opt/venv"]
    assert stages["serve-gpu"][:2] == ["FROM service AS serve-gpu", "COPY --from=builder-gpu /opt/venv /opt/venv"]

    service = stages["service"]
    assert any(line.startswith("COPY models/default ") for line in service)
    users = [line.split()[1] for line in service if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    (healthcheck,) = (line for line in service if line.startswith("HEALTHCHECK "))
    assert healthcheck.endswith('CMD ["python", "/opt/muongan/healthcheck.py", "/healthz"]')
    assert "COPY deploy/healthcheck.py /opt/muongan/healthcheck.py" in service
    assert f"http://127.0.0.1:{PORT}{{route}}" in (ROOT / "deploy" / "healthcheck.py").read_text()
    (entrypoint,) = (line for line in service if line.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT "))[:4] == ["tini", "--", "muongan", "serve"]
    assert f'"--port", "{PORT}"' in entrypoint and f"EXPOSE {PORT}" in service
    env = dict(re.findall(r"(MUONGAN_\w+)=(\S+)", " ".join(line for line in service if line.startswith("ENV "))))
    settings = _settings_from(env)
    assert settings.model_dir == Path("/opt/muongan/models/default")
    # Open streams are cut by the service before an engine's default 10 s stop timeout ends in SIGKILL.
    assert settings.shutdown_grace_s < 10


# --- docker compose ---------------------------------------------------------------------------------------


def _compose(*files: str, **env: str) -> dict[str, Any]:
    """`docker compose config` as the Compose CLI resolves it, with defaults unless ``env`` overrides."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MUONGAN_")}
    args = [arg for file in files for arg in ("-f", file)]
    result = _tool("docker-compose", *args, "config", "--format", "json", env={**clean, **env})
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_runs_gpu_replicas_behind_nginx() -> None:
    config = _compose("docker-compose.yml")
    muongan, nginx = config["services"]["muongan"], config["services"]["nginx"]

    assert muongan["build"]["target"] == "serve-gpu" and muongan["image"] == "muongan-gpu:latest"
    assert muongan["deploy"]["replicas"] == 2
    (gpu,) = muongan["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    # Arguments without spaces: podman's Docker-compatible API splits them at spaces.
    assert muongan["healthcheck"]["test"] == ["CMD", "python", "/opt/muongan/healthcheck.py", "/readyz"]
    assert muongan["expose"] == [str(PORT)] and "ports" not in muongan  # reachable only through nginx
    (models,) = muongan["volumes"]
    assert models["target"] == "/models" and models["read_only"]
    _settings_from(muongan["environment"])

    assert nginx["depends_on"]["muongan"]["condition"] == "service_healthy"
    assert nginx["ports"][0]["published"] == str(PORT)
    assert Path(nginx["build"]["context"]) == ROOT / "deploy" / "nginx"
    nginx_conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert "include /etc/nginx/muongan/upstream.conf;" in nginx_conf
    assert "include /etc/nginx/muongan/proxy.conf;" in nginx_conf
    assert nginx.get("environment", {}).get("MUONGAN_UPSTREAM", f"muongan:{PORT}") == f"muongan:{PORT}"


def test_compose_settings_come_from_the_environment() -> None:
    config = _compose("docker-compose.yml", MUONGAN_REPLICAS="5", MUONGAN_MAX_CONCURRENT="9", MUONGAN_PORT="9000")
    muongan = config["services"]["muongan"]
    assert muongan["deploy"]["replicas"] == 5
    assert _settings_from(muongan["environment"]).max_concurrent == 9
    assert config["services"]["nginx"]["ports"][0]["published"] == "9000"


def test_compose_cpu_override_drops_the_gpu_reservation() -> None:
    muongan = _compose("docker-compose.yml", "deploy/compose.cpu.yml")["services"]["muongan"]
    assert muongan["build"]["target"] == "serve" and muongan["image"] == "muongan:latest"
    assert not muongan["deploy"]["resources"]["reservations"].get("devices")
    assert _settings_from(muongan["environment"]).device == "cpu"


# --- Kubernetes -------------------------------------------------------------------------------------------


def _manifests() -> dict[str, dict[str, Any]]:
    """Every resource under deploy/k8s by path and kind."""
    found = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{path.relative_to(K8S)}:{document['kind']}"] = document
    return found


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_match_the_strict_schemas(version: str) -> None:
    manifests = _manifests()
    assert {key.split(":")[1] for key in manifests} >= {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for key, manifest in manifests.items():
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{key} against Kubernetes {version}: {error.message} at {list(error.path)}")


def test_k8s_manifests_agree_with_each_other_and_the_service() -> None:
    manifests = _manifests()
    deployment = manifests["deployment.yaml:Deployment"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["service.yaml:Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["pdb.yaml:PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()

    (container,) = pod["spec"]["containers"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"]
    assert container["ports"][0] == {"name": "http", "containerPort": PORT, "protocol": "TCP"}
    assert manifests["service.yaml:Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1

    settings = manifests["configmap.yaml:ConfigMap"]
    assert container["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}]
    _settings_from(settings["data"])

    exported = {metric.name for metric in Metrics().registry.collect()}
    for key in ("hpa.yaml:HorizontalPodAutoscaler", "optional/hpa-active-generations.yaml:HorizontalPodAutoscaler"):
        hpa = manifests[key]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "muongan"}
        assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        for metric in hpa["metrics"]:
            if metric["type"] == "Pods":
                assert metric["pods"]["metric"]["name"] in exported
