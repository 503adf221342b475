#!/usr/bin/env bash
# Debian packages the tests need beyond Python, installed only where missing (a warm machine
# skips apt):
#   chromium     the browser test drives Debian's headless Chromium through Playwright
#                (Playwright's own browser download cannot work here)
#   postgresql   the PostgreSQL tests start a throwaway server from its binaries (under CI
#                those tests fail rather than skip when it is missing)
#   npm          installs axe-core (tests/package-lock.json), which the browser test runs in
#                the page to check accessibility (`make test` runs `npm ci --prefix tests`)
#   bubblewrap   every grading kernel runs in a bwrap sandbox (course_grade/kernels/sandbox.py); under
#                CI the sandbox tests fail rather than skip when it is missing
# Needs root (or sudo) to install; otherwise says what to run.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v npm >/dev/null || missing+=(npm)
command -v bwrap >/dev/null || missing+=(bubblewrap)
((${#missing[@]})) || exit 0
if [[ $(id -u) -eq 0 ]]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
  echo "missing system packages: ${missing[*]}; install them with: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}"
