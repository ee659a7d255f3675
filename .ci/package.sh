#!/usr/bin/env bash
# `make package`: build the AWS Lambda and Vercel bundles under build/, lint the CloudFormation
# template, and smoke-test both bundles in a clean python3.12 against the local stack.
# Offline apart from the package registries: no AWS account, no Vercel login.
#   build/lambda/ai-queue.zip   functions + shared + manylinux wheels (serverless.yml's artifact)
#   build/lambda/osls/          what `osls package` generated (CloudFormation template, state)
#   build/vercel/               `vercel build` output (.vercel/output), made self-contained
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
STAGE=ci
REGION=us-east-1
started=$(date +%s)

step() { printf '\n== %s (%ss)\n' "$1" "$(($(date +%s) - started))"; }

# The first CPython 3.12 that runs: on PATH, else pyenv's (the Makefile looks the same way).
find_python312() {
    local candidate
    for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return
        fi
    done
    echo "make package needs CPython 3.12 (what Lambda and Vercel run)" >&2
    return 1
}

step "tools: npm ci (vercel, osls), uv and cfn-lint"
if [ ! -f node_modules/.package-stamp ] || [ package-lock.json -nt node_modules/.package-stamp ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules/.package-stamp
fi
if [ ! -f .venv/.installed-package ] || [ .ci/requirements-package.txt -nt .venv/.installed-package ]; then
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -r .ci/requirements-package.txt
    touch .venv/.installed-package
fi
PYTHON312=$(find_python312)
echo "python3.12: $PYTHON312"
rm -rf build/lambda build/vercel build/tools
mkdir -p build/lambda build/tools
ln -s "$BIN/uv" build/tools/uv
# Vercel's Python builder looks for python3.12 and uv on PATH.
PATH="$(dirname "$PYTHON312"):$ROOT/build/tools:$PATH"
export PATH

step "lambda: requirements for manylinux x86_64 / CPython 3.12, byte-compiled, zipped"
"$BIN/python" .ci/build_lambda.py --python "$PYTHON312" --out build/lambda

step "lambda: osls package --stage $STAGE --region $REGION"
# osls asks for credentials even to package; these are placeholders, never used to call AWS.
AWS_ACCESS_KEY_ID=AKIAOFFLINEPACKAGING AWS_SECRET_ACCESS_KEY=offline-packaging-only \
    SLS_TELEMETRY_DISABLED=1 AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING=1 \
    node_modules/.bin/osls package --stage "$STAGE" --region "$REGION" --package build/lambda/osls
TEMPLATE=build/lambda/osls/cloudformation-template-update-stack.json

step "lambda: cfn-lint"
# W3005 (a DependsOn that a Ref already implies) is how osls writes every HTTP API route.
"$BIN/cfn-lint" --ignore-checks W3005 -- "$TEMPLATE"
echo "cfn-lint: no errors or warnings in $TEMPLATE"

step "vercel: vercel build in a staging copy"
"$BIN/python" .ci/build_vercel.py --out build/vercel

step "smoke test: the built bundles in a clean python3.12 (-I -S -B)"
"$BIN/python" .ci/smoke.py --python "$PYTHON312" --lambda-zip build/lambda/ai-queue.zip \
    --template "$TEMPLATE" --vercel build/vercel

step "bundle sizes"
lambda_unzipped=$("$BIN/python" -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' build/lambda/ai-queue.zip)
printf '  %-58s %6s KiB zipped, %6s KiB unzipped\n' build/lambda/ai-queue.zip \
    "$(($(stat -c %s build/lambda/ai-queue.zip) / 1024))" "$((lambda_unzipped / 1024))"
for function in build/vercel/functions/functions/*.func; do
    printf '  %-58s %6s KiB\n' "$function" "$(du -sk "$function" | cut -f1)"
done
echo
echo "make package: done in $(($(date +%s) - started)) s"
