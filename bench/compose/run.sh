#!/usr/bin/env bash
# Benchmark of a rigs Docker Compose deploy against the usual
# `DOCKER_HOST=ssh://user@host docker compose up -d --wait`, one client per host at once.
#
# Builds a throw-away lab on this machine (run as root): a controller docker engine where the
# images are built, a docker-registry without auth on 127.0.0.1, and three simulated hosts, each
# its own dockerd and its own sshd on 127.0.0.1 with sshd's default MaxSessions and MaxStartups.
# Compose v2 needs the modern engine (Docker 26.1 unpacked in /var/cache/rigs-tests/docker-modern
# by tests/run.sh), whose client ships the plugin. Everything is started and stopped by PID and
# torn down on exit, on failure and on Ctrl-C. README.md next to this file says what is measured
# and how to read the output.
#
# Environment knobs (all optional):
#   TOOLS="baseline rigs"  the tools to measure, in this order
#   RUNS=3             rounds of cold v1, upgrade to v2 and deploy of broken (medians reported)
#   RIGS=PATH          rigs binary (default: target/release/rigs, brought up to date first with
#                      cargo build --release when TOOLS has rigs)
#   LOGIN=rigs-test    the account both tools log in as
#   PORT_BASE=2700     the registry listens on PORT_BASE, the sshd of host N on PORT_BASE+N
#   WEB_PORT_BASE=5100 the web service of host N publishes 127.0.0.1:WEB_PORT_BASE+N
#   SKIP_WIDE=1        leave out the 10-service case
#   SETTLE=N           rigs' compose_settle, the seconds every container must keep running after
#                      `up --wait` (default: rigs' own default)
#   STEP_TIMEOUT=300   seconds one deploy may take before it counts as failed (timed out)
#   QUIET_WAIT=15      before each run, wait up to this many seconds for an idle second (0: don't)
#   KEEP_WORK=1        keep the temporary folder (logs) instead of removing it
#   RIGS_DOCKER_MODERN=DIR  where the modern engine is unpacked (as for the tests)
set -euo pipefail
# One block, read whole before it starts: an edit of this file during a run (others work in this
# tree) cannot change what the running benchmark does.
# shellcheck disable=SC2317 # cleanup is called from a trap
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOOLS=${TOOLS:-baseline rigs}
RUNS=${RUNS:-3}
RIGS_GIVEN=${RIGS:-}
RIGS=${RIGS:-$REPO/target/release/rigs}
LOGIN=${LOGIN:-rigs-test}
PORT_BASE=${PORT_BASE:-2700}
WEB_PORT_BASE=${WEB_PORT_BASE:-5100}
SKIP_WIDE=${SKIP_WIDE:-0}
SETTLE=${SETTLE:-}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
QUIET_WAIT=${QUIET_WAIT:-15}
KEEP_WORK=${KEEP_WORK:-0}
MODERN_ROOT=${RIGS_DOCKER_MODERN:-/var/cache/rigs-tests/docker-modern}
RESULTS=$HERE/results-latest.txt
HOSTS=(h1 h2 h3)
PROJECT=shop

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

read -ra TOOL_LIST <<<"$TOOLS"
((${#TOOL_LIST[@]} > 0)) || die "TOOLS is empty"
for t in "${TOOL_LIST[@]}"; do [[ $t == baseline || $t == rigs ]] || die "unknown tool '$t' in TOOLS (baseline, rigs)"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ -z $SETTLE || $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a number of seconds"
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || die "run as root (it starts dockerd and sshd)"
for tool in /usr/sbin/sshd /usr/bin/ssh ssh-keygen busybox jq curl timeout ss awk docker-registry; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install docker.io docker-registry openssh-server openssh-client busybox-static jq curl)"
done
DOCKERD=$MODERN_ROOT/usr/sbin/dockerd
DOCKER=$MODERN_ROOT/usr/bin/docker
COMPOSE_PLUGIN=$MODERN_ROOT/usr/libexec/docker/cli-plugins/docker-compose
# As tests/support/engine.rs: containerd, the shims and docker-proxy from the unpacked folder
# first, bookworm's runc and docker-init after it.
DAEMON_PATH=$MODERN_ROOT/usr/bin:$MODERN_ROOT/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for tool in "$DOCKERD" "$DOCKER" "$COMPOSE_PLUGIN" "$MODERN_ROOT/usr/bin/containerd" /usr/sbin/runc; do
    [[ -x $tool ]] || die "$tool is missing (tests/run.sh installs docker.io and unpacks the modern engine into $MODERN_ROOT)"
done
[[ -e /run/containerd/containerd.sock ]] &&
    die "a system containerd listens on /run/containerd/containerd.sock; the lab's engines would share it"
for port in "$PORT_BASE" $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) \
    $((WEB_PORT_BASE + 1)) $((WEB_PORT_BASE + 2)) $((WEB_PORT_BASE + 3)); do
    if ss -Hltn "sport = :$port" | grep -q .; then die "port $port is taken; set PORT_BASE or WEB_PORT_BASE"; fi
done

# Short path: dockerd's containerd sockets live under the exec root (108-byte socket path limit).
WORK=$(mktemp -d /tmp/rbc.XXXXXX)
chmod 755 "$WORK"
id "$LOGIN" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$LOGIN"
PIDS_DOCKERD=()
PIDS_SSHD=()
PIDS_BG=()
PID_REGISTRY=
MADE_RUN_SSHD=0

# The processes below PIDs (children, their children, ...), from /proc.
descendants() {
    local f line pid ppid p c queue=("$@") found=()
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        pid=${line%% *}
        line=${line##*) }
        read -r _ ppid _ <<<"$line"
        kids[$ppid]+=" $pid"
    done
    while ((${#queue[@]})); do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in ${kids[$p]:-}; do found+=("$c") queue+=("$c"); done
    done
    echo "${found[@]}"
}
# Stops everything the lab started: the running deploys (each leads a process group under
# timeout), every session below the sshd, the sshd, the containers, the dockerd, the registry,
# then whatever still names the work folder (a managed containerd outlives a killed dockerd),
# and unmounts what the engines left there.
stop_lab() {
    local pid i f sessions e
    for pid in "${PIDS_BG[@]}"; do kill -TERM -- "-$pid" "$pid" 2>/dev/null; done
    if ((${#PIDS_SSHD[@]})); then
        sessions=$(descendants "${PIDS_SSHD[@]}")
        # shellcheck disable=SC2086 # a list of PIDs
        [[ -z $sessions ]] || kill -TERM $sessions 2>/dev/null
    fi
    for e in ctl "${HOSTS[@]}"; do
        [[ -S $WORK/$e/sock ]] || continue
        # shellcheck disable=SC2046 # a list of IDs
        dk "$e" rm -f $(dk "$e" ps -aq 2>/dev/null) >/dev/null 2>&1
    done
    for pid in "${PIDS_SSHD[@]}" "${PIDS_DOCKERD[@]}" $PID_REGISTRY; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS_BG[@]}" "${PIDS_SSHD[@]}" "${PIDS_DOCKERD[@]}" $PID_REGISTRY; do
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not stop; killing it"
            kill -KILL -- "-$pid" "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    PIDS_BG=() PIDS_SSHD=() PIDS_DOCKERD=() PID_REGISTRY=
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [[ $pid != "$$" ]] && grep -qaF -- "$WORK/" "$f" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    return 0
}
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    cd /
    stop_lab
    if ((KEEP_WORK)); then log "kept $WORK"; else rm -rf "$WORK"; fi
    ((MADE_RUN_SSHD)) && rmdir /run/sshd 2>/dev/null
    if ((rc != 0)); then log "failed (exit $rc)"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

unset SSH_AUTH_SOCK RIGS_RECIPES RIGS_INVENTORY RIGS_OUTPUT RIGS_KNOWN_HOSTS RIGS_SECRETS DOCKER_CONTEXT DOCKER_HOST
# The controller's docker client configuration, for the baseline's clients and rigs alike: no
# login (the registry has no auth) and the Compose plugin.
export DOCKER_CLI_HINTS=false DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$COMPOSE_PLUGIN" "$DOCKER_CONFIG/cli-plugins/docker-compose"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(now)

# ---------------------------------------------------------------------------------------- rigs
if has_tool rigs; then
    if [[ -z $RIGS_GIVEN ]]; then
        log "cargo build --release (a no-op when target/release/rigs is up to date)"
        if ! (cd "$REPO" && nice -n 19 cargo build --release) >"$WORK/cargo.log" 2>&1; then
            tail -30 "$WORK/cargo.log" >&2
            [[ -x $RIGS ]] || die "cargo build failed and there is no $RIGS"
            log "warning: cargo build failed; benchmarking the existing $RIGS, which may be older than the tree"
            BUILD_NOTE=" (cargo build failed: existing binary of $(date -r "$RIGS" '+%Y-%m-%d %H:%M'), may be stale)"
        fi
    fi
    [[ -x $RIGS ]] || die "no rigs binary at $RIGS"
    # Private copies: a build or an edit elsewhere during the benchmark changes neither.
    cp -p "$RIGS" "$WORK/rigs"
    RIGS_VERSION="$("$WORK/rigs" --version 2>/dev/null || echo "rigs (unknown version)"), binary $RIGS of $(date -r "$RIGS" '+%Y-%m-%d %H:%M')${BUILD_NOTE:-}"
    RIGS=$WORK/rigs
fi

# ---------------------------------------------------------------------------------- ssh, files
if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd && MADE_RUN_SSHD=1; fi
ssh-keygen -q -t ed25519 -N '' -C rigs-bench-client -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"
: >"$WORK/known_hosts"
declare -A PORT WEB_PORT
for n in 1 2 3; do
    PORT[h$n]=$((PORT_BASE + n))
    WEB_PORT[h$n]=$((WEB_PORT_BASE + n))
done
REGISTRY=127.0.0.1:$PORT_BASE
mkdir -p "$WORK/keys"
for h in "${HOSTS[@]}"; do
    ssh-keygen -q -t ed25519 -N '' -C "rigs-bench-$h" -f "$WORK/keys/$h"
    echo "[127.0.0.1]:${PORT[$h]} $(cut -d' ' -f1,2 "$WORK/keys/$h.pub")" >>"$WORK/known_hosts"
done
# OpenSSH reads ~/.ssh/config from the account's home in the password file, whatever HOME says,
# so the docker CLI's ssh:// helper gets the key and known_hosts from an `ssh` first on its PATH.
cat >"$WORK/ssh_config" <<EOF
Host *
    IdentityFile $WORK/client_key
    IdentitiesOnly yes
    BatchMode yes
    UserKnownHostsFile $WORK/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
EOF
# The same, with connection sharing, as guides on compose over ssh:// advise for speed.
cat "$WORK/ssh_config" - >"$WORK/ssh_config_mux" <<EOF
    ControlMaster auto
    ControlPath $WORK/mux-%p
    ControlPersist 30
EOF
mkdir -p "$WORK/bin" "$WORK/bin-mux" "$WORK/hostbin"
ln -s "$DOCKER" "$WORK/bin/docker"
ln -s "$DOCKER" "$WORK/bin-mux/docker"
ln -s "$DOCKER" "$WORK/hostbin/docker"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$WORK/ssh_config" >"$WORK/bin/ssh"
printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$WORK/ssh_config_mux" >"$WORK/bin-mux/ssh"
chmod 755 "$WORK/bin/ssh" "$WORK/bin-mux/ssh"

# ------------------------------------------------------------------------------------- engines
dk() { local name=$1; shift; "$DOCKER" -H "unix://$WORK/$name/sock" "$@"; }

start_engine() { # NAME: a dockerd with everything of its own under $WORK/NAME
    local d=$WORK/$1
    mkdir -p "$d/data" "$d/exec"
    echo '{ "exec-opts": ["native.cgroupdriver=cgroupfs"], "features": { "containerd-snapshotter": true } }' >"$d/daemon.json"
    PATH=$DAEMON_PATH "$DOCKERD" --config-file "$d/daemon.json" --data-root "$d/data" \
        --exec-root "$d/exec" --pidfile "$d/dockerd.pid" --host "unix://$d/sock" \
        --bridge none --iptables=false --ip6tables=false --group "$LOGIN" \
        </dev/null >"$d/dockerd.log" 2>&1 &
    PIDS_DOCKERD+=("$!")
}
wait_engine() {
    local i
    for ((i = 0; i < 600; i++)); do
        dk "$1" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -20 "$WORK/$1/dockerd.log" >&2
    die "engine $1 did not come up"
}

# A host's sshd keeps sshd's defaults for what the comparison is about: MaxSessions 10 and
# MaxStartups 10:30:100. It logs every login (LogLevel INFO), which is how connections are counted.
start_sshd() { # HOST
    local h=$1 d=$WORK/$1
    mkdir -p "$d/home/.docker/cli-plugins"
    ln -s "$COMPOSE_PLUGIN" "$d/home/.docker/cli-plugins/docker-compose"
    chown -R "$LOGIN:" "$d/home"
    chown -h "$LOGIN:" "$d/home/.docker/cli-plugins/docker-compose"
    chmod 755 "$d"
    cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:${PORT[$h]}
HostKey $WORK/keys/$h
PidFile $d/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
SetEnv DOCKER_HOST=unix://$d/sock HOME=$d/home PATH=$WORK/hostbin:/usr/local/bin:/usr/bin:/bin
LogLevel INFO
EOF
    /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" </dev/null &
    PIDS_SSHD+=("$!")
}
logins() { grep -c 'Accepted publickey' "$WORK/$1/sshd.log" || true; }
# What sshd turned away: a session past MaxSessions on a shared connection ("no more sessions"),
# or a connection past MaxStartups. The clients retry or fall back, so a deploy can still work.
refusals() { grep -cE 'no more sessions|past MaxStartups' "$WORK/$1/sshd.log" || true; }

start_registry() {
    mkdir -p "$WORK/registry/data"
    cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: $REGISTRY
EOF
    docker-registry serve "$WORK/registry/config.yml" </dev/null >"$WORK/registry/registry.log" 2>&1 &
    PID_REGISTRY=$!
    local i
    for ((i = 0; i < 100; i++)); do
        curl -sf "http://$REGISTRY/v2/" >/dev/null && return 0
        kill -0 "$PID_REGISTRY" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/registry/registry.log" >&2
    die "docker-registry did not start on $REGISTRY"
}

log "starting 4 docker engines ($DOCKERD), the registry on $REGISTRY and 3 sshd under $WORK"
for e in ctl "${HOSTS[@]}"; do start_engine "$e"; done
start_registry
for h in "${HOSTS[@]}"; do start_sshd "$h"; done
for e in ctl "${HOSTS[@]}"; do wait_engine "$e"; done
E_VERSION=$(dk ctl version --format '{{.Server.Version}}')
C_VERSION=$("$DOCKER" compose version --short)
for h in "${HOSTS[@]}"; do
    ok=0
    for ((i = 0; i < 100; i++)); do
        # shellcheck disable=SC2016 # expanded by the remote shell
        if got=$(PATH=$WORK/bin:$PATH ssh -p "${PORT[$h]}" "$LOGIN@127.0.0.1" 'echo "$DOCKER_HOST $(docker compose version --short)"' 2>/dev/null); then ok=1; break; fi
        sleep 0.1
    done
    ((ok)) || { cat "$WORK/$h/sshd.log" >&2; die "sshd of $h did not answer"; }
    [[ $got == "unix://$WORK/$h/sock $C_VERSION" ]] || die "$h: DOCKER_HOST and compose over ssh are '$got'"
done

# ------------------------------------------------------------------------------------- images
log "building base, app:v1, app:v2, app:broken, worker:1 and cache:1 on the controller; pushing them"
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/www" "$ROOT/tmp"
cp "$(command -v busybox)" "$ROOT/bin/busybox"
for app in sh httpd wget cat env sleep echo ls nc; do ln -s busybox "$ROOT/bin/$app"; done
tar -C "$ROOT" -c . | dk ctl import --change 'CMD ["/bin/sh"]' - "$REGISTRY/base:1" >/dev/null
# httpd and the loops under a shell that ends on SIGTERM: as PID 1 they would ignore it, and
# every stop would sit out docker's 10 s timeout.
HTTPD='["/bin/sh", "-c", "trap '\''exit 0'\'' TERM; /bin/httpd -f -p 8080 -h /www & wait"]'
LOOP='["/bin/sh", "-c", "trap '\''exit 0'\'' TERM; while :; do sleep 1; done"]'
FAIL='["/bin/sh", "-c", "echo starting; exit 1"]'
commit() { # REFERENCE CMD [VERSION]
    local c
    c=$(dk ctl create --network none "$REGISTRY/base:1")
    if [[ -n ${3:-} ]]; then
        echo "$3" >"$WORK/version"
        dk ctl cp "$WORK/version" "$c:/www/version"
    fi
    dk ctl commit --change "CMD $2" "$c" "$1" >/dev/null
    dk ctl rm "$c" >/dev/null
}
commit "$REGISTRY/app:v1" "$HTTPD" v1
commit "$REGISTRY/app:v2" "$HTTPD" v2
commit "$REGISTRY/app:broken" "$FAIL" broken
commit "$REGISTRY/worker:1" "$LOOP"
commit "$REGISTRY/cache:1" "$LOOP" cache
for ref in base:1 app:v1 app:v2 app:broken worker:1 cache:1; do
    dk ctl push "$REGISTRY/$ref" >>"$WORK/push.log" 2>&1 || { tail "$WORK/push.log" >&2; die "push $ref failed"; }
done

# ------------------------------------------------------------------------------------ projects
PROJ=$WORK/project
mkdir -p "$PROJ/recipes" "$PROJ/home"
cp "$REPO/recipes/docker.rhai" "$PROJ/recipes/docker.rhai"
# The same file for both tools: TAG and WEB_PORT come from each client's environment (the
# baseline) or from rigs (deploy:TAG and the host's compose_env).
HEALTH='    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/version"]
      interval: 1s
      timeout: 2s
      retries: 3'
# shellcheck disable=SC2016 # ${TAG} and ${WEB_PORT} are for compose to fill in
web_service() {
    printf 'name: %s\nservices:\n  web:\n    image: %s/app:${TAG:?}\n' "$PROJECT" "$REGISTRY"
    printf '    ports:\n      - "127.0.0.1:${WEB_PORT:?}:8080"\n%s\n' "$HEALTH"
}
{
    web_service
    printf '  worker:\n    image: %s/worker:1\n  cache:\n    image: %s/cache:1\n' "$REGISTRY" "$REGISTRY"
} >"$PROJ/compose.yaml"
# Ten services: the web service and nine loops.
{
    web_service
    for n in 1 2 3 4 5 6 7 8 9; do printf '  worker%s:\n    image: %s/worker:1\n' "$n" "$REGISTRY"; done
} >"$PROJ/compose10.yaml"
inventory() { # FILE COMPOSE_FILE
    {
        printf '[env.bench]\nhosts = ["h1", "h2", "h3"]\n'
        for h in "${HOSTS[@]}"; do
            printf '\n[hosts.%s]\naddress = "127.0.0.1"\nport = %s\nuser = "%s"\nidentity = "%s"\n' \
                "$h" "${PORT[$h]}" "$LOGIN" "$WORK/client_key"
            printf 'vars = { compose_env = { WEB_PORT = "%s" } }\n' "${WEB_PORT[$h]}"
        done
        printf '\n[vars]\ncompose = "%s"\ncompose_project = "%s"\n' "$2" "$PROJECT"
        [[ -z $SETTLE ]] || printf 'compose_settle = %s\n' "$SETTLE"
    } >"$1"
}
inventory "$PROJ/inv.toml" compose.yaml
inventory "$PROJ/inv10.toml" compose10.yaml
SERVICES[3]=compose.yaml
SERVICES[10]=compose10.yaml

# ------------------------------------------------------------------------------------ the runs
# Every host back to nothing: no containers, networks, images or rigs state.
clean_hosts() {
    local h ids
    for h in "${HOSTS[@]}"; do
        ids=$(dk "$h" ps -aq)
        # shellcheck disable=SC2086 # a list of IDs
        [[ -z $ids ]] || dk "$h" rm -f $ids >/dev/null
        dk "$h" network prune -f >/dev/null
        dk "$h" image prune -af >/dev/null
        [[ -z $(dk "$h" image ls -aq) ]] || die "$h still holds images after cleaning"
        rm -rf "$WORK/$h/home/.rigs"
    done
}

# The web service of host H: "TAG STATE serves=VERSION", TAG the app tag its image has on the
# host (or its ID), VERSION what 127.0.0.1:WEB_PORT/version answers ("-": nothing).
web_state() { # HOST
    local h=$1 id state image tag t got
    id=$(dk "$h" ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=web" | head -n 1)
    if [[ -z $id ]]; then
        echo "none"
        return
    fi
    read -r state image <<<"$(dk "$h" inspect --format '{{.State.Status}} {{.Image}}' "$id")"
    tag=${image:7:12}
    for t in v1 v2 broken; do
        [[ $(dk "$h" image inspect --format '{{.Id}}' "$REGISTRY/app:$t" 2>/dev/null) == "$image" ]] && tag=$t
    done
    got=$(curl -s --max-time 2 "http://127.0.0.1:${WEB_PORT[$h]}/version" || true)
    echo "$tag $state serves=${got:--}"
}

# Waits (up to QUIET_WAIT seconds) for a second in which the machine is at most 15% busy, so that
# a build next to the benchmark does not land inside a measurement.
BUSY_STARTS=0
cpu_snap() {
    local _c u n sy i w q sq st _rest
    read -r _c u n sy i w q sq st _rest </proc/stat
    echo "$((u + n + sy + q + sq + st)) $((i + w))"
}
quiet() {
    local i b0 i0 b1 i1 pct=0
    ((QUIET_WAIT > 0)) || return 0
    for ((i = 0; i < QUIET_WAIT; i++)); do
        read -r b0 i0 <<<"$(cpu_snap)"
        sleep 1
        read -r b1 i1 <<<"$(cpu_snap)"
        pct=$(((100 * (b1 - b0)) / (b1 - b0 + i1 - i0 + 1)))
        ((pct <= 15)) && return 0
    done
    log "  machine still ${pct}% busy after ${QUIET_WAIT} s; measuring anyway"
    BUSY_STARTS=$((BUSY_STARTS + 1))
}

# One deploy of TAG with TOOL (baseline, baseline-mux or rigs) and the SERVICES-service file, to
# all hosts at once. Sets LAST_T (wall seconds), LAST_RC (the baseline: the first failing
# client's exit code; 124: timed out), LAST_CONN ("h1/h2/h3" SSH logins during the run),
# LAST_REFUSED (the same for sessions and connections sshd refused) and LAST_ERR (the first
# error line, for the report).
RUN_NO=0
deploy() { # TOOL TAG SERVICES
    local tool=$1 tag=$2 file=${SERVICES[$3]} h t0 pid rc pids=() before=() conn=() refused0=() refused=() out
    RUN_NO=$((RUN_NO + 1))
    out=$WORK/run-$RUN_NO-$tool-$tag-$3
    for h in "${HOSTS[@]}"; do before+=("$(logins "$h")") refused0+=("$(refusals "$h")"); done
    LAST_RC=0
    t0=$(now)
    if [[ $tool == rigs ]]; then
        local inv=inv.toml
        (($3 == 10)) && inv=inv10.toml
        (cd "$PROJ" && PATH=$WORK/bin:$PATH DOCKER_HOST=unix://$WORK/ctl/sock HOME=$PROJ/home \
            exec timeout "$STEP_TIMEOUT" "$RIGS" -f recipes -I "$inv" --known-hosts "$WORK/known_hosts" \
            --output json env:bench "deploy:$tag" </dev/null >"$out.json" 2>"$out.err") &
        pid=$!
        PIDS_BG+=("$pid")
        wait "$pid" || LAST_RC=$?
    else
        local bin=$WORK/bin
        [[ $tool == baseline-mux ]] && bin=$WORK/bin-mux
        for h in "${HOSTS[@]}"; do
            PATH=$bin:$PATH DOCKER_HOST="ssh://$LOGIN@127.0.0.1:${PORT[$h]}" TAG=$tag WEB_PORT=${WEB_PORT[$h]} \
                timeout "$STEP_TIMEOUT" docker compose -p "$PROJECT" -f "$PROJ/$file" up -d --wait \
                </dev/null >"$out.$h.out" 2>"$out.$h.err" &
            pids+=("$!")
            PIDS_BG+=("$!")
        done
        for pid in "${pids[@]}"; do
            rc=0
            wait "$pid" || rc=$?
            ((LAST_RC != 0)) || LAST_RC=$rc
        done
        # A shared connection outlives the clients; the next run starts without one.
        [[ $tool != baseline-mux ]] || for h in "${HOSTS[@]}"; do
            PATH=$bin:$PATH ssh -O exit -p "${PORT[$h]}" "$LOGIN@127.0.0.1" 2>/dev/null || true
        done
    fi
    LAST_T=$(since "$t0")
    PIDS_BG=()
    for h in "${HOSTS[@]}"; do conn+=("$(($(logins "$h") - before[${#conn[@]}]))"); done
    for h in "${HOSTS[@]}"; do refused+=("$(($(refusals "$h") - refused0[${#refused[@]}]))"); done
    LAST_CONN=$(IFS=/; echo "${conn[*]}")
    LAST_REFUSED=$(IFS=/; echo "${refused[*]}")
    LAST_ERR=$(cat "$out"*.err 2>/dev/null | grep -m 1 -iE 'error|fail|refused|denied|exited|unhealthy' | cut -c1-150 || true)
    if [[ $tool == rigs && $LAST_RC != 0 ]]; then
        rc=$(tail -n 1 "$out.json" 2>/dev/null | jq -r '[.hosts[]?.error // empty] | first // empty' 2>/dev/null | cut -c1-150 || true)
        LAST_ERR=${rc:-$LAST_ERR}
    fi
}

# Checks that every host serves TAG after a deploy that should have worked.
check_serving() { # TOOL TAG
    local h s
    ((LAST_RC == 0)) || { log "  $1 deploy of $2 failed (exit $LAST_RC): $LAST_ERR"; return 1; }
    for h in "${HOSTS[@]}"; do
        s=$(web_state "$h")
        [[ $s == "$2 running serves=$2" ]] || { log "  $1: $h after deploy of $2: $s"; return 1; }
    done
}

declare -A T CONN REFUSED RC END
CASES=(v1 v2 broken)
declare -A DESC=(
    [v1]="cold deploy (hosts empty)"
    [v2]="upgrade from v1"
    [broken]="app:broken, exits at once"
)
cd "$PROJ"
for ((r = 1; r <= RUNS; r++)); do
    for tool in "${TOOL_LIST[@]}"; do
        log "round $r of $RUNS: $tool"
        clean_hosts
        for c in "${CASES[@]}"; do
            quiet
            deploy "$tool" "$c" 3
            T[$tool,$c,$r]=$LAST_T CONN[$tool,$c,$r]=$LAST_CONN REFUSED[$tool,$c,$r]=$LAST_REFUSED RC[$tool,$c,$r]=$LAST_RC
            log "  $(printf '%-9s %-36s %6s s  exit %3s  ssh logins %s, refused %s' "$tool" "$c ${DESC[$c]}" "$LAST_T" "$LAST_RC" "$LAST_CONN" "$LAST_REFUSED")"
            if [[ $c != broken ]]; then
                check_serving "$tool" "$c" || die "$tool: deploy of $c did not leave every host serving it"
            else
                END[$tool,$r]=""
                for h in "${HOSTS[@]}"; do END[$tool,$r]+="$h: $(web_state "$h"); "; done
                ((LAST_RC == 0)) || END[$tool,$r]+="error: ${LAST_ERR:-see logs}"
                log "  end state: ${END[$tool,$r]}"
            fi
        done
    done
done

WIDE_TOOLS=()
declare -A WIDE
if [[ $SKIP_WIDE != 1 ]]; then
    for tool in "${TOOL_LIST[@]}"; do
        WIDE_TOOLS+=("$tool")
        [[ $tool == baseline ]] && WIDE_TOOLS+=(baseline-mux)
    done
    for tool in "${WIDE_TOOLS[@]}"; do
        log "10 services: $tool"
        clean_hosts
        quiet
        deploy "$tool" v1 10
        ok=yes
        check_serving "$tool" v1 || ok=no
        running=""
        for h in "${HOSTS[@]}"; do
            running+="${running:+/}$(dk "$h" ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter status=running | wc -l)"
        done
        WIDE[$tool]=$(printf '%-13s %-4s %7s %5s  %-9s %-8s %-8s  %s' "$tool" "$ok" "$LAST_T" "$LAST_RC" "$LAST_CONN" "$LAST_REFUSED" "$running" "$LAST_ERR")
        log "  ${WIDE[$tool]}"
    done
fi
clean_hosts

# ------------------------------------------------------------------------------------- report
FMT='%-9s %-36s %7s %7s %7s %7s  %-11s %-8s %s\n'
{
    echo "rigs compose benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(ssh -V 2>&1 | cut -d, -f1)"
    echo "docker engine $E_VERSION (containerd image store) on 4 engines (controller + 3 hosts), Compose $C_VERSION; sshd defaults (MaxSessions 10, MaxStartups 10:30:100)"
    has_tool rigs && echo "$RIGS_VERSION"
    echo "project: web (httpd, healthcheck every 1 s, port 127.0.0.1:${WEB_PORT_BASE}+N), worker and cache (sleep loops); images from a registry without auth on $REGISTRY"
    echo "baseline: DOCKER_HOST=ssh://$LOGIN@127.0.0.1:PORT docker compose -p $PROJECT -f compose.yaml up -d --wait, one client per host at once"
    has_tool rigs && echo "rigs: rigs -f recipes -I inv.toml env:bench deploy:TAG (recipes/docker.rhai, compose = \"compose.yaml\", compose_env per host, compose_settle ${SETTLE:-default})"
    echo "runs that started on a busy machine (other work >15% CPU for ${QUIET_WAIT} s): $BUSY_STARTS"
    echo "load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg); whole benchmark $(awk -v a="$T_START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
    echo "seconds: wall time of the deploy to all 3 hosts; exit: of run 1 (the baseline: the first failing client's); ssh logins and refused (sessions or connections sshd turned away): per host h1/h2/h3 in run 1"
    echo
    # shellcheck disable=SC2059 # the format is FMT
    printf "$FMT" tool case run1 run2 run3 median "ssh logins" refused exit
    for tool in "${TOOL_LIST[@]}"; do
        for c in "${CASES[@]}"; do
            runs=() all=()
            for ((r = 1; r <= RUNS; r++)); do all+=("${T[$tool,$c,$r]}"); done
            for ((r = 1; r <= 3; r++)); do runs+=("${T[$tool,$c,$r]:--}"); done
            # shellcheck disable=SC2059 # the format is FMT
            printf "$FMT" "$tool" "$c ${DESC[$c]}" "${runs[@]}" "$(median "${all[@]}")" "${CONN[$tool,$c,1]}" "${REFUSED[$tool,$c,1]}" "${RC[$tool,$c,1]}"
        done
        echo
    done
    echo "end state after the deploy of broken (web service per host: app tag of its image, state, what its port serves):"
    for tool in "${TOOL_LIST[@]}"; do
        for ((r = 1; r <= RUNS; r++)); do printf '  %-9s run %s  exit %3s  %s\n' "$tool" "$r" "${RC[$tool,broken,$r]}" "${END[$tool,$r]}"; done
    done
    if [[ $SKIP_WIDE != 1 ]]; then
        echo
        echo "10 services (web + 9 loops), cold deploy of v1, one run; baseline-mux: the baseline with ssh ControlMaster (connection sharing)"
        printf '%-13s %-4s %7s %5s  %-9s %-8s %-8s  %s\n' tool ok seconds exit logins refused running "first error"
        for tool in "${WIDE_TOOLS[@]}"; do echo "${WIDE[$tool]}"; done
    fi
} >"$WORK/results.txt"
cp "$WORK/results.txt" "$RESULTS"
cat "$WORK/results.txt"
log "results written to $RESULTS"
exit
}
