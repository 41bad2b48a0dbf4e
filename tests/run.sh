#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the integration tests need (as root, through
# apt-get, without starting any system service; a second, modern Docker engine is unpacked into a
# folder of its own), then checks formatting and lints, then runs every unit and integration test.
# The tests start their own sshd, dockerd, containerd and registry processes on loopback and stop
# them by PID; no system service is started. The sudo and password tests create one unprivileged
# account, `rigs-test`, with a sudoers entry of its own.
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
command -v strace >/dev/null 2>&1 || missing+=(strace)

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

# The modern engine: Debian trixie's Docker 26 with containerd 1.7 and the Compose v2 plugin,
# unpacked into a folder of their own. Every Docker test runs on it too, with the containerd image
# store, next to bookworm's classic 20.10 engine. The system's packages and apt state are left
# untouched: apt reads a sources list, package lists and a cache of its own in a temporary folder,
# and `dpkg-deb -x` only unpacks. trixie's runc needs a newer glibc, so bookworm's runc (from
# docker.io above) runs the containers. The folder counts only once `.complete` is written, last;
# a partial one is unpacked again. RIGS_DOCKER_MODERN names a folder unpacked elsewhere instead.
modern=/var/cache/rigs-tests/docker-modern
if [ -n "${RIGS_DOCKER_MODERN:-}" ]; then
    if [ ! -x "$RIGS_DOCKER_MODERN/usr/sbin/dockerd" ]; then
        echo "tests/run.sh: RIGS_DOCKER_MODERN=$RIGS_DOCKER_MODERN holds no usr/sbin/dockerd" >&2
        exit 1
    fi
elif [ ! -e "$modern/.complete" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "tests/run.sh: the modern Docker engine is missing from $modern" >&2
        echo "run as root (it unpacks Debian trixie's docker.io, containerd, docker-cli and docker-compose there, installing nothing), or unpack them yourself and set RIGS_DOCKER_MODERN to that folder" >&2
        exit 1
    fi
    echo "tests/run.sh: unpacking the modern Docker engine into $modern" >&2
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
    echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
        > "$work/trixie.list"
    apt_own=(
        -o "Dir::Etc::sourcelist=$work/trixie.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
        -o APT::Sandbox::User=root -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    )
    apt-get -qq "${apt_own[@]}" update
    (cd "$work/debs" && apt-get -qq "${apt_own[@]}" download \
        docker.io/trixie containerd/trixie docker-cli/trixie docker-compose/trixie)
    rm -rf "$modern" "$modern.partial"
    mkdir -p "$modern.partial"
    for deb in "$work"/debs/*.deb; do
        dpkg-deb -x "$deb" "$modern.partial"
        dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >> "$modern.partial/.versions"
    done
    for tool in usr/sbin/dockerd usr/bin/docker usr/bin/containerd usr/bin/containerd-shim-runc-v2 \
        usr/libexec/docker/cli-plugins/docker-compose; do
        if [ ! -x "$modern.partial/$tool" ]; then
            echo "tests/run.sh: $tool is not in the unpacked trixie packages" >&2
            exit 1
        fi
    done
    mv "$modern.partial/.versions" "$modern.partial/.complete"
    mv "$modern.partial" "$modern"
    rm -rf "$work"
    trap - EXIT
fi

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
