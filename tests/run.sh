#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the integration tests need (as root, through
# apt-get, without starting any system service), then checks formatting and lints, then runs every
# unit and integration test. The tests start their own sshd (and later dockerd/registry) processes
# on loopback and stop them by PID; no system service is started. The sudo and password tests
# create one unprivileged account, `rigs-test`, with a sudoers entry of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v sudo >/dev/null 2>&1 || missing+=(sudo)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v python3 >/dev/null 2>&1 || missing+=(python3)

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: missing packages: ${missing[*]}" >&2
        echo "run as root (it installs them with apt-get) or install them yourself" >&2
        exit 1
    fi
    echo "tests/run.sh: installing ${missing[*]}" >&2
    # A policy-rc.d that denies service starts keeps apt from launching sshd/dockerd/registry as
    # system services; the tests run their own instances.
    policy=/usr/sbin/policy-rc.d
    restore=""
    if [ -e "$policy" ]; then
        restore="$(mktemp)"
        cp -p "$policy" "$restore"
    fi
    cleanup() {
        if [ -n "$restore" ]; then mv "$restore" "$policy"; else rm -f "$policy"; fi
    }
    trap cleanup EXIT
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    cleanup
    trap - EXIT
fi

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
