"""The deployment rules checkov does not know: EU-only regions, private buckets, no secret written
into a file, no container running as root. Each finding names the file and why.

Run on the repository (or a mutated copy of it): `python -m tests.deploy.policy [ROOT]` prints one
line per finding and exits 1 when there is any.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

OVERLAYS = ("dev", "prod")
EU_REGION_RULE = Path("deploy/terraform/modules/eu_region/variables.tf")
# Environment variables and keys whose value is a credential, or a URL that usually carries one.
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|TOKEN|API_KEYS?$|_KEY$|CREDENTIALS|DATABASE_URL|POSTGRES_URL|STORE_URI)",
    re.IGNORECASE,
)
# user:password@ in a URL, where the password is not an interpolated ${VARIABLE}
PASSWORD_IN_URL = re.compile(r"://[^:/@\s]+:(?!\$\{)[^@\s]+@")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "Pod"}
ROOT_USERS = {"root", "0", "0:0", "root:root"}


def eu_regions(root: Path) -> set[str]:
    """The allowed regions, read from the Terraform rule itself so the two cannot drift."""
    return set(re.findall(r'"(europe-[a-z]+\d+)"', (root / EU_REGION_RULE).read_text()))


def check_repository(root: Path) -> list[str]:
    """Every finding in the deployment files under `root`, as `file: why` lines."""
    return [
        *check_terraform(root),
        *check_dockerfile(root),
        *check_compose(root),
        *(finding for overlay in OVERLAYS for finding in check_overlay(root, overlay)),
    ]


# --- Terraform --------------------------------------------------------------------------------


def _blocks(text: str, kind: str) -> Iterator[tuple[str, str]]:
    """(name, body) of each `resource "KIND" "NAME" { ... }` block, braces matched."""
    for match in re.finditer(rf'resource\s+"{kind}"\s+"([\w-]+)"\s*\{{', text):
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        yield match.group(1), text[match.end() : end - 1]


def check_terraform(root: Path) -> list[str]:
    findings: list[str] = []
    allowed = eu_regions(root)
    for path in sorted((root / "deploy/terraform").rglob("*.tf")):
        name, text = str(path.relative_to(root)), path.read_text()
        for literal in re.findall(r'^\s*(?:region|location|default)\s*=\s*"([^"$]+)"', text, re.M):
            looks_like_region = re.fullmatch(r"[a-z]+-[a-z]+\d+|[A-Z]+(-[A-Z]+\d+)?", literal)
            if looks_like_region and literal.lower() not in allowed and literal != "EU":
                findings.append(f"{name}: region {literal!r} is not in the EU (data residency)")
        for bucket, body in _blocks(text, "google_storage_bucket"):
            if not re.search(r'public_access_prevention\s*=\s*"enforced"', body):
                findings.append(
                    f"{name}: bucket {bucket} is not private: public_access_prevention must be "
                    '"enforced"'
                )
            if not re.search(r"uniform_bucket_level_access\s*=\s*true", body):
                findings.append(
                    f"{name}: bucket {bucket} allows per-object ACLs (public objects): set "
                    "uniform_bucket_level_access = true"
                )
        for member in re.findall(r"\b(allUsers|allAuthenticatedUsers)\b", text):
            findings.append(f"{name}: grants access to {member}: a public resource")
    return findings


# --- Dockerfile -------------------------------------------------------------------------------


def check_dockerfile(root: Path) -> list[str]:
    path = root / "Dockerfile"
    lines = [line.strip() for line in path.read_text().splitlines()]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    users = [line.split()[1] for line in lines[last_from:] if line.upper().startswith("USER ")]
    findings = []
    if not users or users[-1].lower() in ROOT_USERS or users[-1].startswith("0:"):
        findings.append("Dockerfile: the final image runs as root: end with USER <non-root uid>")
    for line in lines:
        match = re.match(r"(?:ENV|ARG)\s+(\w+)[= ](\S+)", line)
        if match and SECRET_NAME.search(match.group(1)) and match.group(2):
            findings.append(f"Dockerfile: {match.group(1)} is a secret written into the image")
    return findings


# --- compose ----------------------------------------------------------------------------------


def _inlined(name: str, value: object) -> bool:
    text = "" if value is None else str(value)
    if PASSWORD_IN_URL.search(text):
        return True
    return bool(SECRET_NAME.search(name)) and bool(text) and "${" not in text


def check_compose(root: Path) -> list[str]:
    name = "deploy/compose.yaml"
    compose: dict[str, Any] = yaml.safe_load((root / name).read_text())
    findings: list[str] = []
    environments = [("x-modelcycle-env", compose.get("x-modelcycle-env") or {})]
    for service, spec in compose["services"].items():
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        environments.append((service, environment))
        if str(spec.get("user", "")).lower() in ROOT_USERS:
            findings.append(f"{name}: service {service} runs as root (user: {spec['user']})")
    for owner, environment in environments:
        for variable, value in environment.items():
            if _inlined(variable, value):
                findings.append(
                    f"{name}: {owner} sets {variable} to a literal secret: use ${{{variable}}} "
                    "from deploy/.env"
                )
    for config, spec in (compose.get("configs") or {}).items():
        if PASSWORD_IN_URL.search(str(spec.get("content", ""))):
            findings.append(f"{name}: config {config} has a password written into its content")
    return findings


# --- Kubernetes -------------------------------------------------------------------------------


def render_overlay(root: Path, overlay: str) -> list[dict[str, Any]]:
    """The manifests `kubectl kustomize` builds for one overlay."""
    built = subprocess.run(
        ["kubectl", "kustomize", str(root / "deploy/k8s/overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") not in POD_KINDS:
        return None
    spec: dict[str, Any] = doc["spec"]
    return spec if doc["kind"] == "Pod" else spec["template"]["spec"]


def _runs_as_root(pod: dict[str, Any], container: dict[str, Any]) -> str | None:
    pod_context = pod.get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    if context.get("runAsUser") == 0:
        return "runAsUser is 0"
    if context.get("runAsNonRoot") is not True:
        return "runAsNonRoot is not true"
    return None


def check_overlay(root: Path, overlay: str) -> list[str]:
    where = f"deploy/k8s/overlays/{overlay}"
    findings: list[str] = []
    for doc in render_overlay(root, overlay):
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "Secret" and (doc.get("data") or doc.get("stringData")):
            findings.append(
                f"{where}: Secret {name} is written in the manifests: create it out of band and "
                "reference it (secretKeyRef)"
            )
        if kind == "ConfigMap":
            findings += [
                f"{where}: ConfigMap {name} holds {key}, a secret: move it to a Secret"
                for key, value in (doc.get("data") or {}).items()
                if _inlined(key, value)
            ]
        pod = pod_spec(doc)
        if pod is None:
            continue
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            reason = _runs_as_root(pod, container)
            if reason:
                findings.append(
                    f"{where}: {kind} {name}, container {container['name']} may run as root "
                    f"({reason})"
                )
            findings += [
                f"{where}: {kind} {name}, container {container['name']} has {env['name']} "
                "written inline: use valueFrom.secretKeyRef"
                for env in container.get("env", [])
                if "value" in env and _inlined(env["name"], env["value"])
            ]
    return findings


def main(arguments: list[str]) -> int:
    root = Path(arguments[0]) if arguments else Path.cwd()
    findings = check_repository(root)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
