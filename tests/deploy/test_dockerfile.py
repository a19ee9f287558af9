"""The Dockerfile: one multi-stage image from uv.lock, a slim pinned base, no compilers and a
non-root user in the final stage, and a build context that carries only what the image needs.

No container engine can build or run it here (docs/deployment.md, "Building the image"); CI
builds it, checks its size against the 1.2 GB budget, runs `modelcycle --help` in it, scans it."""

from __future__ import annotations

import re

from tests.deploy.conftest import ROOT

COMPILERS = ("gcc", "g++", "clang", "build-essential", "make", "cmake", "rustc", "cargo")


def stages() -> list[list[str]]:
    found: list[list[str]] = []
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            found.append([line])
        elif found and line and not line.startswith("#"):
            found[-1].append(line)
    return found


def test_the_image_is_built_in_stages_from_the_lock_file_on_a_slim_pinned_base() -> None:
    build, final = stages()
    for stage in (build, final):
        base = stage[0].split()[1]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert any("uv sync --frozen --no-dev" in line for line in build)
    assert any(line.startswith("COPY --from=build") for line in final)


def test_the_final_stage_has_no_compiler_and_a_non_root_user() -> None:
    final = " ".join(stages()[-1])
    installs = re.findall(r"apt-get install[^&]*", final)
    for package in COMPILERS:
        assert not any(re.search(rf"\s{re.escape(package)}(\s|$)", i) for i in installs), package
    user = re.findall(r"USER (\S+)", final)
    assert user and user[-1].split(":")[0] not in {"root", "0"}


def test_the_image_has_no_entrypoint_so_dagster_run_jobs_can_start() -> None:
    """The Kubernetes run launcher gives each run's Job `dagster api execute_run` as arguments;
    an ENTRYPOINT would turn that into `modelcycle dagster ...`."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "\nENTRYPOINT" not in dockerfile
    assert 'CMD ["modelcycle", "--help"]' in dockerfile


def test_the_build_context_is_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[next(i for i, line in enumerate(ignore) if not line.startswith("#"))] == "*"
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied |= {p.rstrip("/") for p in line.split()[1:-1]}
    assert copied == included  # .venv, .git, .modelcycle, deploy/.env never enter the context
