#!/usr/bin/env bash
# Benchmark of `docker::ship` against `docker save | docker load` (the floor) and the usual
# `docker save | gzip | ssh docker load`, on both Docker engines rigs supports.
#
# Builds a throw-away lab on this machine (run as root): one controller docker engine, three
# simulated hosts (each its own dockerd and its own sshd), host h1 behind a veth pair in a
# network namespace of its own so its link can be shaped with tc. The lab runs once per engine:
#   classic  /usr/sbin/dockerd + /usr/bin/docker (Debian bookworm's 20.10), classic image store
#   modern   Docker 26.1 unpacked in /var/cache/rigs-tests/docker-modern (as tests/run.sh does)
#            with "containerd-snapshotter": true, i.e. the containerd image store
# Everything listens on 127.0.0.1 or on the veth's private addresses only, is started by PID
# and is torn down on exit, on failure and on Ctrl-C. See README.md next to this file for what
# is measured and how to read the output.
#
# Environment knobs (all optional):
#   ENGINES="classic modern"  the engines to measure, in this order
#   PAYLOADS="random files"   what the data layer of the test image holds, each measured in turn:
#                      random (incompressible: the worst case for compression) or files (this
#                      machine's /usr/bin: programs compress about 2.8:1, like the typical
#                      application image). PAYLOAD=X is the same as PAYLOADS=X.
#   RIGS=PATH          rigs binary to test (default: target/release/rigs of this checkout, which
#                      the script first brings up to date with cargo build --release)
#   RUNS=3             runs per unshaped case (the median is reported)
#   IMAGE_MB=150       size of the data layer, in MB (10^6 bytes)
#   LOGIN=rigs-test    the account both rigs and the baseline log in as
#   DELTA_KB=100       size of the extra layer of bench/PAYLOAD:2, in KB (10^3 bytes)
#   RATE=20mbit        rate of the shaped link (tc tbf syntax: bit, kbit, mbit, gbit, bps, ...)
#   SKIP_SHAPED=1      leave out the shaped-link cases (f1-f4)
#   SHAPED_EXTRA=0     on the shaped link, only the full ship and the re-ship (f1, f2)
#   PORT_BASE=2300     sshd of host N listens on PORT_BASE+N
#   STEP_TIMEOUT=900   seconds any single transfer may take before the benchmark fails
#   QUIET_WAIT=30      before each run, wait up to this many seconds for an idle second (0: don't)
#   KEEP_WORK=1        keep the temporary folder (logs) instead of removing it
#   TIMELINE=1         log when rigs' events arrive (first command, progress, summary); with
#                      KEEP_WORK=1 each rigs-*.json.timeline keeps every event with its time
#   HOLD=1             set up the lab of the first engine and payload, print how to reach it,
#                      wait for Ctrl-C
#   RIGS_DOCKER_MODERN=DIR  where the modern engine is unpacked (as for the tests)
set -euo pipefail
# The whole script is one block, read before it starts: an edit of this file during a run
# (others work in this tree) cannot change what the running benchmark does.
# shellcheck disable=SC2317 # cleanup, median and minimum are called from a trap and through "$how"
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RIGS_GIVEN=${RIGS:-}
RIGS=${RIGS:-$REPO/target/release/rigs}
ENGINES=${ENGINES:-classic modern}
PAYLOADS=${PAYLOADS:-${PAYLOAD:-random files}}
RUNS=${RUNS:-3}
IMAGE_MB=${IMAGE_MB:-150}
DELTA_KB=${DELTA_KB:-100}
RATE=${RATE:-20mbit}
SKIP_SHAPED=${SKIP_SHAPED:-0}
SHAPED_EXTRA=${SHAPED_EXTRA:-1}
HOLD=${HOLD:-0}
QUIET_WAIT=${QUIET_WAIT:-30}
PORT_BASE=${PORT_BASE:-2300}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
KEEP_WORK=${KEEP_WORK:-0}
TIMELINE=${TIMELINE:-0}
MODERN_ROOT=${RIGS_DOCKER_MODERN:-/var/cache/rigs-tests/docker-modern}
# Both rigs and the baseline log in as this account. Not root: root's shell start-up files on
# this kind of machine cost ~75 ms per SSH command (pyenv), which would be charged to every
# command rigs runs and only once to the baseline's single pipeline.
LOGIN=${LOGIN:-rigs-test}
RESULTS=$HERE/results-latest.txt

NETNS=rigs-bench-h1
VETH_C=rbench-c0        # controller side, 10.213.0.1
VETH_H=rbench-h0        # inside $NETNS, 10.213.0.2
NET_C=10.213.0.1
NET_H=10.213.0.2
HOSTS=(h1 h2 h3)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

read -ra ENGINE_LIST <<<"$ENGINES"
read -ra PAYLOAD_LIST <<<"$PAYLOADS"
((${#ENGINE_LIST[@]} > 0)) || die "ENGINES is empty"
((${#PAYLOAD_LIST[@]} > 0)) || die "PAYLOADS is empty"
for e in "${ENGINE_LIST[@]}"; do [[ $e == classic || $e == modern ]] || die "unknown engine '$e' in ENGINES (classic, modern)"; done
for p in "${PAYLOAD_LIST[@]}"; do [[ $p == random || $p == files ]] || die "unknown payload '$p' in PAYLOADS (random, files)"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"

# The rate of the shaped link in bits per second, from tc's syntax.
RATE_BITS=$(awk -v r="$RATE" 'BEGIN {
    if (!match(r, /^[0-9.]+/)) exit 1
    n = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1))
    m["bit"] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9; m["tbit"] = 1e12
    m["kibit"] = 1024; m["mibit"] = 1024^2; m["gibit"] = 1024^3; m["tibit"] = 1024^4
    m["bps"] = 8; m["kbps"] = 8e3; m["mbps"] = 8e6; m["gbps"] = 8e9; m["tbps"] = 8e12
    m["kibps"] = 8 * 1024; m["mibps"] = 8 * 1024^2; m["gibps"] = 8 * 1024^3; m["tibps"] = 8 * 1024^4
    if (u == "") u = "bit"
    if (!(u in m)) exit 1
    printf "%.0f", n * m[u]
}') || die "RATE=$RATE: use tc's syntax, e.g. 20mbit"

[[ $(id -u) -eq 0 ]] || die "run as root (it starts dockerd, sshd and a network namespace)"
for tool in /usr/sbin/sshd ssh ssh-keygen busybox ip tc jq gzip timeout ss awk mkfifo; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install docker.io openssh-server openssh-client busybox-static iproute2 jq)"
done
# engine_bins NAME: sets DOCKERD, DOCKER and DAEMON_PATH (empty: the script's own PATH) of an engine.
engine_bins() {
    case $1 in
        classic) DOCKERD=/usr/sbin/dockerd DOCKER=/usr/bin/docker DAEMON_PATH= ;;
        modern)
            DOCKERD=$MODERN_ROOT/usr/sbin/dockerd DOCKER=$MODERN_ROOT/usr/bin/docker
            # As tests/support/engine.rs: containerd, the shims and docker-proxy from the unpacked
            # folder first, bookworm's runc and docker-init after it.
            DAEMON_PATH=$MODERN_ROOT/usr/bin:$MODERN_ROOT/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ;;
    esac
}
for e in "${ENGINE_LIST[@]}"; do
    engine_bins "$e"
    for tool in "$DOCKERD" "$DOCKER"; do
        [[ -x $tool ]] || die "$tool is missing for the $e engine (tests/run.sh installs docker.io and unpacks the modern engine into $MODERN_ROOT)"
    done
    if [[ $e == modern ]]; then
        [[ -x $MODERN_ROOT/usr/bin/containerd ]] || die "$MODERN_ROOT/usr/bin/containerd is missing (run tests/run.sh)"
        [[ -x /usr/sbin/runc ]] || die "/usr/sbin/runc is missing (apt-get install runc)"
    fi
done
[[ -e /run/containerd/containerd.sock ]] &&
    die "a system containerd listens on /run/containerd/containerd.sock; the lab's engines would share it"
for h in 1 2 3; do
    if ss -Hltn "sport = :$((PORT_BASE + h))" | grep -q .; then
        die "port $((PORT_BASE + h)) is taken; set PORT_BASE"
    fi
done
if ip netns list | grep -qw "$NETNS" || ip link show "$VETH_C" >/dev/null 2>&1; then
    die "$NETNS or $VETH_C exists (a previous run still active?); remove with: ip netns del $NETNS; ip link del $VETH_C"
fi
if ip -4 addr | grep -q '10\.213\.0\.'; then
    die "10.213.0.0/30 is already in use on this machine"
fi

# Short path: dockerd's containerd sockets live under the exec root (108-byte socket path limit).
WORK=$(mktemp -d /tmp/rbs.XXXXXX)
chmod 755 "$WORK"
id "$LOGIN" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$LOGIN"
PIDS_DOCKERD=()
PIDS_SSHD=()
PIDS_BG=()
MADE_RUN_SSHD=0
NETNS_MADE=0
SHAPING=0

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
# Stops everything the lab started under FOLDER (a run's work folder or one engine's): the
# transfer pipelines (each leads a process group), the sshd and every session below them, the
# dockerd, then whatever still names FOLDER on its command line (a managed containerd outlives
# a killed dockerd), and unmounts what the engines left mounted there.
stop_lab() { # FOLDER
    local dir=$1 pid i f sessions
    for pid in "${PIDS_BG[@]}"; do kill -TERM -- "-$pid" "$pid" 2>/dev/null; done
    if ((${#PIDS_SSHD[@]})); then
        # shellcheck disable=SC2046 # a list of PIDs
        sessions=$(descendants "${PIDS_SSHD[@]}")
        # shellcheck disable=SC2086 # a list of PIDs
        [[ -z $sessions ]] || kill -TERM $sessions 2>/dev/null
    fi
    for pid in "${PIDS_SSHD[@]}" "${PIDS_DOCKERD[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS_BG[@]}" "${PIDS_SSHD[@]}" "${PIDS_DOCKERD[@]}"; do
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not stop; killing it"
            kill -KILL -- "-$pid" "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    PIDS_BG=() PIDS_SSHD=() PIDS_DOCKERD=()
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [[ $pid != "$$" ]] && grep -qaF -- "$dir/" "$f" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    # Mounts an engine left behind, deepest first.
    awk -v w="$dir/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    return 0
}
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    cd /
    stop_lab "$WORK"
    ((SHAPING)) && tc qdisc del dev "$VETH_C" root 2>/dev/null
    if ((NETNS_MADE)); then
        ip link del "$VETH_C" 2>/dev/null
        ip netns del "$NETNS" 2>/dev/null
    fi
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
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n 1; }
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo FAIL; }

unset SSH_AUTH_SOCK RIGS_RECIPES RIGS_INVENTORY RIGS_OUTPUT RIGS_KNOWN_HOSTS RIGS_SECRETS DOCKER_CONTEXT DOCKER_HOST
export DOCKER_CLI_HINTS=false DOCKER_CONFIG=$WORK/docker-config

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(now)

# ---------------------------------------------------------------------------------------- rigs
if [[ -z ${RIGS_GIVEN:-} ]]; then
    log "cargo build --release (a no-op when target/release/rigs is up to date; ~5 min cold)"
    if ! (cd "$REPO" && cargo build --release) >"$WORK/cargo.log" 2>&1; then
        tail -30 "$WORK/cargo.log" >&2
        [[ -x $RIGS ]] || die "cargo build failed and there is no $RIGS"
        log "warning: cargo build failed; benchmarking the existing $RIGS, which may be older than the tree"
        BUILD_NOTE=" (cargo build failed: existing binary of $(date -r "$RIGS" '+%Y-%m-%d %H:%M'), may be stale)"
    fi
fi
[[ -x $RIGS ]] || die "no rigs binary at $RIGS"
# A private copy: a build finishing elsewhere during the benchmark must not swap the binary.
cp -p "$RIGS" "$WORK/rigs"
RIGS_BUILT=$(date -r "$RIGS" '+%Y-%m-%d %H:%M')
RIGS_SRC=$RIGS
RIGS=$WORK/rigs
RIGS_VERSION=$("$RIGS" --version 2>/dev/null || echo "rigs (unknown version)")
COMMIT=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
COMMIT+=", binary $RIGS_SRC of $RIGS_BUILT"
COMMIT+=${BUILD_NOTE:-}

# --------------------------------------------------------------------------------- ssh, netns
if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd && MADE_RUN_SSHD=1; fi
ssh-keygen -q -t ed25519 -N '' -C rigs-bench-client -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"
: >"$WORK/known_hosts"

log "network namespace $NETNS with veth $VETH_C ($NET_C) <-> $VETH_H ($NET_H)"
NETNS_MADE=1
ip netns add "$NETNS"
ip link add "$VETH_C" type veth peer name "$VETH_H"
ip link set "$VETH_H" netns "$NETNS"
ip addr add "$NET_C/30" dev "$VETH_C"
ip link set "$VETH_C" up
ip netns exec "$NETNS" ip addr add "$NET_H/30" dev "$VETH_H"
ip netns exec "$NETNS" ip link set "$VETH_H" up
ip netns exec "$NETNS" ip link set lo up

declare -A ADDR PORT
for n in 1 2 3; do
    h=h$n
    ADDR[$h]=127.0.0.1
    PORT[$h]=$((PORT_BASE + n))
done
ADDR[h1]=$NET_H
# One host key per host for the whole run: each engine's sshd of that host uses it.
mkdir -p "$WORK/keys"
for h in "${HOSTS[@]}"; do
    ssh-keygen -q -t ed25519 -N '' -C "rigs-bench-$h" -f "$WORK/keys/$h"
    echo "[${ADDR[$h]}]:${PORT[$h]} $(cut -d' ' -f1,2 "$WORK/keys/$h.pub")" >>"$WORK/known_hosts"
done
SSH_OPTS=(-F /dev/null -i "$WORK/client_key" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes)
ssh_host() { local h=$1; shift; ssh "${SSH_OPTS[@]}" -p "${PORT[$h]}" "$LOGIN@${ADDR[$h]}" "$@"; }

# ---------------------------------------------------------------------------------- rigs project
PROJ=$WORK/project
mkdir -p "$PROJ/recipes"
cat >"$PROJ/recipes/bench.rhai" <<'EOF'
/// Ship an image from the controller's engine with the default compression.
fn ship_ref(r) { docker::ship(r); }

/// Ship an image uncompressed.
fn ship_raw(r) { docker::ship(r, #{ compress: false }); }
EOF
inventory() { # FILE HOST...
    local file=$1 h list=""
    shift
    for h in "$@"; do list+="${list:+, }\"$h\""; done
    {
        printf '[env.bench]\nhosts = [%s]\n' "$list"
        for h in "$@"; do
            printf '\n[hosts.%s]\naddress = "%s"\nport = %s\nuser = "%s"\nidentity = "%s"\n' \
                "$h" "${ADDR[$h]}" "${PORT[$h]}" "$LOGIN" "$WORK/client_key"
        done
    } >"$file"
}
inventory "$PROJ/inv1.toml" h1
inventory "$PROJ/inv3.toml" h1 h2 h3

# ------------------------------------------------------------------------------------ payloads
# The same bytes go into the images of both engines.
log "making the payloads ($PAYLOADS, $IMAGE_MB MB each) and a busybox root"
for p in "${PAYLOAD_LIST[@]}"; do
    if [[ $p == files ]]; then
        mkdir -p "$WORK/payload-files"
        total=0
        for f in /usr/bin/*; do
            [[ -f $f && ! -L $f ]] || continue
            cp "$f" "$WORK/payload-files/"
            total=$((total + $(stat -c %s "$f")))
            ((total < IMAGE_MB * 1000 * 1000)) || break
        done
    else
        head -c $((IMAGE_MB * 1000 * 1000)) /dev/urandom >"$WORK/payload-random"
    fi
done
head -c $((DELTA_KB * 1000)) /dev/urandom >"$WORK/delta.bin"
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/etc"
cp "$(command -v busybox)" "$ROOT/bin/busybox"
for app in sh ls cat head sha256sum; do ln -s busybox "$ROOT/bin/$app"; done

# Sizes of an archive, compressed as rigs or the baseline could: sets SAVE_BYTES, GZIP6_BYTES,
# GZIP1_BYTES, ZSTD3_BYTES ("-" without a zstd CLI or python module).
codec_sizes() { # FILE
    local f=$1
    SAVE_BYTES=$(stat -c %s "$f")
    GZIP6_BYTES=$(gzip -6 -c "$f" | wc -c)
    GZIP1_BYTES=$(gzip -1 -c "$f" | wc -c)
    if command -v zstd >/dev/null; then
        ZSTD3_BYTES=$(zstd -q -3 -c "$f" | wc -c)
    else
        ZSTD3_BYTES=$(python3 - "$f" 2>/dev/null <<'EOF' || echo -
import sys
try:
    from compression import zstd
    data = zstd.compress(open(sys.argv[1], "rb").read(), level=3)
except ImportError:
    import zstandard
    data = zstandard.ZstdCompressor(level=3).compress(open(sys.argv[1], "rb").read())
print(len(data))
EOF
)
    fi
}

# ------------------------------------------------------------------------------------- engines
# The engine being measured: its name and its lab folder.
ENGINE=
EDIR=
dk() { local name=$1; shift; "$DOCKER" -H "unix://$EDIR/$name/sock" "$@"; }

# start_engine NAME: a dockerd with everything of its own under $EDIR/NAME, socket $EDIR/NAME/sock
start_engine() {
    local name=$1 d=$EDIR/$1 features=
    mkdir -p "$d/data" "$d/exec"
    [[ $ENGINE == modern ]] && features=', "features": { "containerd-snapshotter": true }'
    printf '{ "exec-opts": ["native.cgroupdriver=cgroupfs"]%s }\n' "$features" >"$d/daemon.json"
    PATH=${DAEMON_PATH:-$PATH} "$DOCKERD" --config-file "$d/daemon.json" --data-root "$d/data" \
        --exec-root "$d/exec" --pidfile "$d/dockerd.pid" --host "unix://$d/sock" \
        --bridge none --iptables=false --ip6tables=false --group "$LOGIN" \
        </dev/null >"$d/dockerd.log" 2>&1 &
    PIDS_DOCKERD+=("$!")
}
wait_engine() {
    local name=$1 i info
    for ((i = 0; i < 600; i++)); do
        dk "$name" version >/dev/null 2>&1 && break
        sleep 0.1
    done
    if ((i == 600)); then
        tail -20 "$EDIR/$name/dockerd.log" >&2
        die "$ENGINE engine $name did not come up"
    fi
    # The image store must be the one this engine is measured with.
    info=$(dk "$name" info --format '{{.Driver}} {{json .DriverStatus}}')
    if [[ $ENGINE == modern ]]; then
        [[ $info == *io.containerd.snapshotter.v1* ]] || die "modern engine $name is not on the containerd image store: $info"
    else
        [[ $info != *io.containerd.snapshotter.v1* ]] || die "classic engine $name is on the containerd image store: $info"
    fi
}

start_sshd() {
    local h=$1 d=$EDIR/$1
    mkdir -p "$d/cache" && chown "$LOGIN:" "$d/cache" && chmod 755 "$d"
    cat >"$d/sshd_config" <<EOF
ListenAddress ${ADDR[$h]}:${PORT[$h]}
HostKey $WORK/keys/$h
PidFile $d/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxSessions 50
MaxStartups 100:30:200
SetEnv DOCKER_HOST=unix://$d/sock XDG_CACHE_HOME=$d/cache PATH=$EDIR/bin:/usr/local/bin:/usr/bin:/bin
LogLevel ERROR
EOF
    if [[ $h == h1 ]]; then
        ip netns exec "$NETNS" /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" </dev/null &
    else
        /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" </dev/null &
    fi
    PIDS_SSHD+=("$!")
}

# Starts the lab of engine $ENGINE: 4 engines, 3 sshd whose sessions use them and this engine's
# docker client ($EDIR/bin/docker, first on their PATH and on rigs' PATH).
start_lab() {
    local e h i ok got
    engine_bins "$ENGINE"
    EDIR=$WORK/$ENGINE
    mkdir -p "$EDIR/bin"
    ln -s "$DOCKER" "$EDIR/bin/docker"
    log "$ENGINE engine: starting 4 docker engines ($DOCKERD) under $EDIR"
    for e in ctl "${HOSTS[@]}"; do start_engine "$e"; done
    for e in ctl "${HOSTS[@]}"; do wait_engine "$e"; done
    E_VERSION[$ENGINE]=$(dk ctl version --format '{{.Server.Version}}')
    E_CLIENT[$ENGINE]=$(dk ctl version --format '{{.Client.Version}}')
    E_STORE[$ENGINE]=$(dk ctl info --format '{{.Driver}}')
    if [[ $ENGINE == modern ]]; then
        E_STORE[$ENGINE]="containerd image store, snapshotter ${E_STORE[$ENGINE]}"
    else
        E_STORE[$ENGINE]="classic image store, graph driver ${E_STORE[$ENGINE]}"
    fi

    log "$ENGINE engine: starting 3 sshd (h1 at ${ADDR[h1]}:${PORT[h1]} in $NETNS, h2/h3 on 127.0.0.1)"
    for h in "${HOSTS[@]}"; do start_sshd "$h"; done
    for h in "${HOSTS[@]}"; do
        ok=0
        for ((i = 0; i < 100; i++)); do
            # shellcheck disable=SC2016 # expanded by the remote shell
            if got=$(ssh_host "$h" 'echo "$DOCKER_HOST $(command -v docker)"' 2>/dev/null); then ok=1; break; fi
            sleep 0.1
        done
        ((ok)) || { cat "$EDIR/$h/sshd.log" >&2; die "sshd of $h did not answer"; }
        [[ $got == "unix://$EDIR/$h/sock $EDIR/bin/docker" ]] || die "$h: DOCKER_HOST and docker over ssh are '$got'"
        got=$(ssh_host "$h" docker version --format "'{{.Client.Version}} {{.Server.Version}}'") ||
            die "$h: docker over ssh does not reach its engine"
        [[ $got == "${E_CLIENT[$ENGINE]} ${E_VERSION[$ENGINE]}" ]] || die "$h: docker over ssh is '$got'"
    done
}

# Builds bench/PAYLOAD:1 (busybox + the payload layer) and bench/PAYLOAD:2 (+ the delta layer)
# on the controller engine and measures their save archive; sets REF1, REF2, ID1, ID2 and the
# per-section sizes.
build_images() { # PAYLOAD
    local p=$1 k=$ENGINE/$1
    REF1=bench/$p:1 REF2=bench/$p:2
    log "$ENGINE engine: building $REF1 (${IMAGE_MB} MB $p layer on busybox) and $REF2 (+${DELTA_KB} KB)"
    if ! dk ctl image inspect bench/base:1 >/dev/null 2>&1; then
        tar -C "$ROOT" -c . | dk ctl import - bench/base:1 >/dev/null
    fi
    dk ctl create --network none --name bench-build1 bench/base:1 /bin/sh >/dev/null
    dk ctl cp "$WORK/payload-$p" bench-build1:/payload.bin
    dk ctl commit bench-build1 "$REF1" >/dev/null
    dk ctl rm bench-build1 >/dev/null
    dk ctl create --network none --name bench-build2 "$REF1" /bin/sh >/dev/null
    dk ctl cp "$WORK/delta.bin" bench-build2:/delta.bin
    dk ctl commit bench-build2 "$REF2" >/dev/null
    dk ctl rm bench-build2 >/dev/null
    ID1=$(dk ctl image inspect -f '{{.Id}}' "$REF1")
    ID2=$(dk ctl image inspect -f '{{.Id}}' "$REF2")
    INFO[$k,layers]=$(dk ctl image inspect -f '{{len .RootFS.Layers}}' "$REF2")
    INFO[$k,size]=$(dk ctl image inspect -f '{{.Size}}' "$REF1")
    dk ctl save "$REF1" >"$WORK/save.tar"
    codec_sizes "$WORK/save.tar"
    INFO[$k,save]=$SAVE_BYTES INFO[$k,gzip6]=$GZIP6_BYTES INFO[$k,gzip1]=$GZIP1_BYTES INFO[$k,zstd3]=$ZSTD3_BYTES
    # What a layer of the archive is: an uncompressed tar, or a blob the engine compressed.
    INFO[$k,layer_types]=$(tar -xOf "$WORK/save.tar" manifest.json | jq -r '.[0].Layers[]' |
        while read -r l; do tar -xOf "$WORK/save.tar" "$l" | head -c 4 | od -An -tx1 | tr -d ' \n'; echo; done |
        awk '{ t = $1 ~ /^1f8b/ ? "gzip" : $1 ~ /^28b52ffd/ ? "zstd" : "tar"; c[t]++ }
             END { for (t in c) printf "%s%d %s", (n++ ? ", " : ""), c[t], t }')
    rm -f "$WORK/save.tar"
    # The best codec this engine's docker load takes: zstd from 23.0 on, gzip on every engine.
    INFO[$k,best]=$GZIP1_BYTES INFO[$k,best_name]="gzip -1"
    if [[ $ENGINE == modern && $ZSTD3_BYTES != - ]] && ((ZSTD3_BYTES < GZIP1_BYTES)); then
        INFO[$k,best]=$ZSTD3_BYTES INFO[$k,best_name]="zstd -3"
    fi
    log "$ENGINE engine: $REF1 save archive ${INFO[$k,save]} bytes (layers: ${INFO[$k,layer_types]}), gzip -6 $GZIP6_BYTES, gzip -1 $GZIP1_BYTES, zstd -3 $ZSTD3_BYTES; $REF2 ${INFO[$k,layers]} layers"
}

# ------------------------------------------------------------------------------- the transfers
clean_hosts() {
    local h
    for h in "${HOSTS[@]}"; do
        dk "$h" rmi -f "$REF1" "$REF2" >/dev/null 2>&1 || true
        dk "$h" image prune -af >/dev/null
        [[ -z $(dk "$h" image ls -aq) ]] || die "$h still holds images after cleaning"
    done
}
check_image() { # HOST REF ID
    local got
    got=$(dk "$1" image inspect -f '{{.Id}}' "$2" 2>/dev/null) || die "$1 has no $2 after the transfer"
    [[ $got == "$3" ]] || die "$1 has $2 as $got, expected $3"
}

# CPU use of the whole machine between two snapshots: prints "busy idle" jiffies.
cpu_snap() {
    local _c u n sy i w q sq st _rest
    read -r _c u n sy i w q sq st _rest </proc/stat
    echo "$((u + n + sy + q + sq + st)) $((i + w))"
}
cpu_pct() { # SNAPSHOT_BEFORE: percent of all cores busy since then
    local b0 i0 b1 i1
    read -r b0 i0 <<<"$1"
    read -r b1 i1 <<<"$(cpu_snap)"
    calc %.0f "100 * ($b1 - $b0) / (($b1 - $b0) + ($i1 - $i0) + 1e-9)"
}

# The usual way, one pipeline per host, all at once:
#   gzip:   docker save | gzip (level 6) | ssh host docker load
#   raw:    docker save | ssh host docker load                     (reference)
#   direct: docker save | docker -H HOST_ENGINE load, no ssh       (the floor: docker load's limit)
# Each side uses the engine's own client. Sets LAST_T (wall seconds) and LAST_CPU. Each pipeline
# runs under timeout, which leads a process group of its own, so cleanup can stop a whole
# pipeline; the script waits for them with `wait`, so a signal reaches its trap at once.
baseline() { # MODE HOST...
    local mode=$1 h t0 c0 pid fail=0 pids=() pipe
    shift
    # shellcheck disable=SC2016 # the inner scripts take their values as arguments
    case $mode in
        gzip) pipe='docker -H "$1" save "$2" | gzip | ssh "${@:3}" docker load >/dev/null' ;;
        raw) pipe='docker -H "$1" save "$2" | ssh "${@:3}" docker load >/dev/null' ;;
        direct) pipe='docker -H "$1" save "$2" | docker -H "$3" load >/dev/null' ;;
        tee3)
            # One save into three engines at once, as rigs does: no ssh, no compression.
            rm -f "$WORK/fifo1" "$WORK/fifo2"
            mkfifo "$WORK/fifo1" "$WORK/fifo2"
            pipe='docker -H "$3" load <"$6" >/dev/null & p1=$!
                  docker -H "$4" load <"$7" >/dev/null & p2=$!
                  docker -H "$1" save "$2" | tee "$6" "$7" | docker -H "$5" load >/dev/null
                  s=$?; wait "$p1" && wait "$p2" && exit "$s"' ;;
    esac
    c0=$(cpu_snap)
    t0=$(now)
    for h in "$@"; do
        if [[ $mode == tee3 ]]; then
            PATH=$EDIR/bin:$PATH timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ \
                "unix://$EDIR/ctl/sock" "$REF1" \
                "unix://$EDIR/h1/sock" "unix://$EDIR/h2/sock" "unix://$EDIR/h3/sock" \
                "$WORK/fifo1" "$WORK/fifo2" </dev/null 2>>"$WORK/baseline.err" &
            pids+=("$!")
            PIDS_BG+=("$!")
            break
        elif [[ $mode == direct ]]; then
            PATH=$EDIR/bin:$PATH timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ \
                "unix://$EDIR/ctl/sock" "$REF1" "unix://$EDIR/$h/sock" </dev/null 2>>"$WORK/baseline.err" &
        else
            PATH=$EDIR/bin:$PATH timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ \
                "unix://$EDIR/ctl/sock" "$REF1" "${SSH_OPTS[@]}" -p "${PORT[$h]}" "$LOGIN@${ADDR[$h]}" \
                </dev/null 2>>"$WORK/baseline.err" &
        fi
        pids+=("$!")
        PIDS_BG+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
    LAST_T=$(since "$t0")
    LAST_CPU=$(cpu_pct "$c0")
    PIDS_BG=()
    ((fail == 0)) || { tail -20 "$WORK/baseline.err" >&2; die "$ENGINE engine: baseline pipeline ($mode) failed"; }
    for h in "$@"; do check_image "$h" "$REF1" "$ID1"; done
}
# rigs_ship INVENTORY TASK REF LABEL: sets LAST_T (wall seconds), LAST_CPU and LAST_B
# (bytes_sent, total over the hosts, from the JSON summary on the last line of stdout).
# Rigs finds this engine's docker client first on its PATH, as the hosts' sessions do.
RUN_NO=0
rigs_ship() {
    local inv=$1 task=$2 ref=$3 label=$4 t0 c0 out err summary n ok pid rc=0
    RUN_NO=$((RUN_NO + 1))
    out=$WORK/rigs-$RUN_NO-$ENGINE-$label.json
    err=$WORK/rigs-$RUN_NO-$ENGINE-$label.err
    c0=$(cpu_snap)
    t0=$(now)
    if [[ $TIMELINE == 1 ]]; then
        # The same, each stdout line also written with its arrival time to $out.timeline.
        # shellcheck disable=SC2016 # the inner script takes its values as arguments
        PATH=$EDIR/bin:$PATH DOCKER_HOST=unix://$EDIR/ctl/sock XDG_CACHE_HOME=$WORK/cache \
            timeout "$STEP_TIMEOUT" bash -o pipefail -c '"$@" | while IFS= read -r l; do
                printf "%s %s\n" "$EPOCHREALTIME" "$l" >&3; printf "%s\n" "$l"; done' _ \
            "$RIGS" -f recipes -I "$inv" --known-hosts "$WORK/known_hosts" \
            --output json env:bench "$task:$ref" </dev/null >"$out" 2>"$err" 3>"$out.timeline" &
    else
        PATH=$EDIR/bin:$PATH DOCKER_HOST=unix://$EDIR/ctl/sock XDG_CACHE_HOME=$WORK/cache \
            timeout "$STEP_TIMEOUT" "$RIGS" -f recipes -I "$inv" --known-hosts "$WORK/known_hosts" \
            --output json env:bench "$task:$ref" </dev/null >"$out" 2>"$err" &
    fi
    pid=$!
    PIDS_BG+=("$pid")
    wait "$pid" || rc=$?
    LAST_T=$(since "$t0")
    LAST_CPU=$(cpu_pct "$c0")
    PIDS_BG=()
    if ((rc != 0)); then
        log "rigs failed (exit $rc): (cd $PROJ && PATH=$EDIR/bin:\$PATH DOCKER_HOST=unix://$EDIR/ctl/sock $RIGS -f recipes -I $inv --known-hosts $WORK/known_hosts --output json env:bench $task:$ref)"
        tail -n 20 "$out" "$err" >&2
        die "$ENGINE engine: rigs $task:$ref failed"
    fi
    summary=$(tail -n 1 "$out")
    [[ $(jq -r .event <<<"$summary") == summary ]] || die "last line of rigs output is not the summary: $summary"
    n=$(jq '.hosts | length' <<<"$summary")
    ok=$(jq .ok <<<"$summary")
    [[ $ok == "$n" && $n -gt 0 ]] || die "rigs summary: $ok of $n hosts ok: $summary"
    LAST_B=$(jq .bytes_sent <<<"$summary")
    [[ $TIMELINE != 1 ]] || timeline "$out.timeline" "$t0"
}
# Prints when rigs' events of one run arrived, in seconds from its start: the first host
# connected, the first `docker load` command (the stream starts), the first and last progress
# event, the first "loaded" message (a host's load and check done) and the summary.
timeline() { # FILE START
    awk -v t0="$2" '{ t = $1 - t0; sub(/^[^ ]+ /, "") }
        /"text":"connected to/ && conn == "" { conn = t }
        /"event":"command"/ && /docker load/ && load == "" { load = t }
        /"event":"progress"/ { if (first == "") first = t; last = t }
        /"text":"[^"]*: loaded / && done == "" { done = t }
        /"event":"summary"/ { end = t }
        END { printf "     timeline: connected %.2f, docker load sent %.2f, progress %.2f-%.2f, loaded %.2f, summary %.2f s\n",
              conn, load, first, last, done, end }' "$1" >&2
}

# Wait (up to QUIET_WAIT seconds) for a second in which the machine is at most 15% busy, so that
# a build running next to the benchmark does not land inside a measurement. Counts the runs that
# had to start on a busy machine anyway.
BUSY_STARTS=0
quiet() {
    local i c0 pct
    ((QUIET_WAIT > 0)) || return 0
    for ((i = 0; i < QUIET_WAIT; i++)); do
        c0=$(cpu_snap)
        sleep 1
        pct=$(cpu_pct "$c0")
        ((pct <= 15)) && return 0
    done
    log "  machine still ${pct}% busy after ${QUIET_WAIT} s; measuring anyway"
    BUSY_STARTS=$((BUSY_STARTS + 1))
}

# One run of a case, image removed from every host first; stores T, C and B[ENGINE/PAYLOAD,case,run].
declare -A T C B S INFO E_VERSION E_CLIENT E_STORE
run_case() { # KEY CASE RUN
    local k=$1 c=$2 r=$3 h
    clean_hosts
    LAST_B=-
    case $c in
        a) baseline gzip h1 ;;
        b) baseline gzip "${HOSTS[@]}" ;;
        c) rigs_ship inv1.toml ship_ref "$REF1" c ;;
        d) rigs_ship inv3.toml ship_ref "$REF1" d ;;
        e) rigs_ship inv1.toml ship_raw "$REF1" e ;;
        x) baseline raw h1 ;;
        y) baseline direct h1 ;;
        z) rigs_ship inv3.toml ship_raw "$REF1" z ;;
        w) baseline tee3 "${HOSTS[@]}" ;;
    esac
    if [[ $c == [dzbw] ]]; then
        for h in "${HOSTS[@]}"; do check_image "$h" "$REF1" "$ID1"; done
    else
        check_image h1 "$REF1" "$ID1"
    fi
    # shellcheck disable=SC2034 # C is read through med's nameref
    T[$k,$c,$r]=$LAST_T C[$k,$c,$r]=$LAST_CPU B[$k,$c,$r]=$LAST_B
    log "  $(printf '%-7s %-6s %-46s %6s s  cpu %3s%%  sent %s' "$ENGINE" "${k#*/}" "$c ${DESC[$c]}" "$LAST_T" "$LAST_CPU" "$LAST_B")"
}
CASES=(a b c d e)   # the comparison with the usual pipeline
REFS=(x y w z)      # references that explain it; y and w are the floors of the goals
declare -A DESC=(
    [a]="baseline save|gzip|ssh|load, 1 host"
    [b]="baseline, 3 hosts (3 pipelines at once)"
    [c]="rigs docker::ship, 1 host (default)"
    [d]="rigs docker::ship, 3 hosts"
    [e]="rigs docker::ship compress:false, 1 host"
    [x]="ref: save|ssh|load (no gzip), 1 host"
    [y]="floor: save|docker load, no ssh, 1 host"
    [w]="floor: save|tee|3x docker load, no ssh"
    [z]="ref: rigs compress:false, 3 hosts"
)

# One shaped case on h1's link; stores S[KEY,NAME,t|b|d].
shaped() { # KEY NAME DESCRIPTION KIND TASK REF ID
    local k=$1 name=$2 desc=$3 kind=$4 task=$5 ref=$6 id=$7
    quiet
    log "  $ENGINE ${k#*/} $name $desc"
    if [[ $kind == baseline ]]; then
        baseline gzip h1
        S[$k,$name,b]=-
    else
        rigs_ship inv1.toml "$task" "$ref" "$name"
        S[$k,$name,b]=$LAST_B
    fi
    check_image h1 "$ref" "$id"
    S[$k,$name,t]=$LAST_T S[$k,$name,d]=$desc
    log "     ${LAST_T} s, sent ${S[$k,$name,b]}"
}
shaped_cases() { # KEY
    local k=$1
    log "$ENGINE engine, ${k#*/}: shaping $VETH_C: tbf rate $RATE burst 32kbit latency 400ms (each full send takes a minute or more)"
    SHAPING=1
    tc qdisc add dev "$VETH_C" root tbf rate "$RATE" burst 32kbit latency 400ms
    clean_hosts
    shaped "$k" f1 "rigs full ship of app:1 (host empty)" rigs ship_ref "$REF1" "$ID1"
    shaped "$k" f2 "rigs re-ship app:2 (host has app:1)" rigs ship_ref "$REF2" "$ID2"
    if [[ $SHAPED_EXTRA == 1 ]]; then
        clean_hosts
        shaped "$k" f3 "ref: rigs compress:false full app:1" rigs ship_raw "$REF1" "$ID1"
        clean_hosts
        shaped "$k" f4 "ref: baseline save|gzip|ssh|load app:1" baseline - "$REF1" "$ID1"
    fi
    tc qdisc del dev "$VETH_C" root
    SHAPING=0
}
SHAPED_NAMES=(f1 f2)
[[ $SHAPED_EXTRA == 1 ]] && SHAPED_NAMES+=(f3 f4)

# ------------------------------------------------------------------------------------ the runs
cd "$PROJ"
KEYS=()
for ENGINE in "${ENGINE_LIST[@]}"; do
    T_ENGINE=$(now)
    start_lab
    for p in "${PAYLOAD_LIST[@]}"; do
        k=$ENGINE/$p
        KEYS+=("$k")
        build_images "$p"
        if [[ $HOLD == 1 ]]; then
            cat >&2 <<EOF
lab of the $ENGINE engine ready with $REF1 and $REF2; Ctrl-C (or kill $$) tears it down
  controller engine: export PATH=$EDIR/bin:\$PATH DOCKER_HOST=unix://$EDIR/ctl/sock
  host engines:      $DOCKER -H unix://$EDIR/h1/sock ...   (h2, h3 likewise)
  ssh:               ssh ${SSH_OPTS[*]} -p ${PORT[h1]} $LOGIN@${ADDR[h1]}
  rigs:              cd $PROJ && PATH=$EDIR/bin:\$PATH DOCKER_HOST=unix://$EDIR/ctl/sock $RIGS -f recipes -I inv1.toml \\
                       --known-hosts $WORK/known_hosts --output json env:bench ship_ref:$REF1
  shape h1's link:   tc qdisc add dev $VETH_C root tbf rate $RATE burst 32kbit latency 400ms
EOF
            trap 'exit 0' INT TERM
            sleep infinity &
            PIDS_BG+=("$!")
            wait "$!"
        fi
        for ((r = 1; r <= RUNS; r++)); do
            log "$ENGINE engine, $p: round $r of $RUNS"
            # Baseline and rigs alternate.
            for c in a c b d e x z y w; do quiet; run_case "$k" "$c" "$r"; done
        done
        [[ $SKIP_SHAPED == 1 ]] || shaped_cases "$k"
    done
    log "$ENGINE engine: stopping its lab"
    stop_lab "$EDIR"
    INFO[$ENGINE,seconds]=$(calc %.0f "$(now) - $T_ENGINE")
done

# ------------------------------------------------------------------------------------- report
med() { # ARRAY KEY CASE [minimum]: the median (or the minimum) over the runs
    local -n values=$1
    local k=$2 c=$3 how=${4:-median} r v=()
    for ((r = 1; r <= RUNS; r++)); do v+=("${values[$k,$c,$r]}"); done
    "$how" "${v[@]}"
}
declare -A M
for k in "${KEYS[@]}"; do
    for c in "${CASES[@]}" "${REFS[@]}"; do M[$k,$c]=$(med T "$k" "$c"); done
done
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
FMT='%-7s %-6s %-44s %6s %6s %6s %7s %6s %6s %5s %11s\n'
row() { # KEY CASE
    local k=$1 c=$2 r runs=() sent=-
    for ((r = 1; r <= RUNS && r <= 3; r++)); do runs+=("${T[$k,$c,$r]}"); done
    while ((${#runs[@]} < 3)); do runs+=(-); done
    [[ ${B[$k,$c,1]} == - ]] || sent=$(med B "$k" "$c")
    # shellcheck disable=SC2059 # the format is FMT
    printf "$FMT" "${k%/*}" "${k#*/}" "$c  ${DESC[$c]}" "${runs[@]}" "${M[$k,$c]}" \
        "$(calc %.1f "${INFO[$k,save]} / 1e6 / ${M[$k,$c]}")" "$(med T "$k" "$c" minimum)" "$(med C "$k" "$c")" "$sent"
}
ideal() { # BYTES: seconds the shaped link needs for them
    calc %.2f "$1 * 8 / $RATE_BITS"
}
{
    echo "rigs ship benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores ($CPU), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM, Linux $(uname -r), $(ssh -V 2>&1 | cut -d, -f1)"
    for e in "${ENGINE_LIST[@]}"; do
        printf 'engine %-7s docker engine %s, client %s, %s (4 engines: controller + 3 hosts); %s s\n' \
            "$e" "${E_VERSION[$e]}" "${E_CLIENT[$e]}" "${E_STORE[$e]}" "${INFO[$e,seconds]}"
    done
    echo "$RIGS_VERSION at commit $COMMIT"
    echo "image bench/PAYLOAD:1 = busybox + one layer of $IMAGE_MB MB; its docker save archive per engine, and that archive compressed:"
    printf '  %-7s %-6s %11s %11s %11s %11s  %s\n' engine payload save "gzip -6" "gzip -1" "zstd -3" "layers in the archive"
    for k in "${KEYS[@]}"; do
        printf '  %-7s %-6s %11s %11s %11s %11s  %s\n' "${k%/*}" "${k#*/}" "${INFO[$k,save]}" "${INFO[$k,gzip6]}" \
            "${INFO[$k,gzip1]}" "${INFO[$k,zstd3]}" "${INFO[$k,layer_types]}"
    done
    echo "runs that started on a busy machine (other work >15% CPU for ${QUIET_WAIT} s): $BUSY_STARTS"
    echo "load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg); whole benchmark $(calc %.0f "$(now) - $T_START") s"
    echo "seconds: wall time per run; MB/s: save archive bytes / median (per host: each host gets the whole image);"
    echo "best: the fastest run (least disturbed by anything else running on the machine);"
    echo "cpu%: median share of all $(nproc) cores busy during the run (hosts share the cores); sent: rigs bytes_sent"
    echo
    # shellcheck disable=SC2059 # the format is FMT
    printf "$FMT" engine payload case run1 run2 run3 median "MB/s" best "cpu%" sent
    for k in "${KEYS[@]}"; do
        for c in "${CASES[@]}" "${REFS[@]}"; do row "$k" "$c"; done
        echo
    done
    for k in "${KEYS[@]}"; do
        printf '%-7s %-6s rigs/floor (c / y) %.2f, compress:false (e / y) %.2f; rigs/baseline throughput (a / c) %.2f x, 3 hosts (b / d) %.2f x;\n' \
            "${k%/*}" "${k#*/}" "$(calc %f "${M[$k,c]} / ${M[$k,y]}")" "$(calc %f "${M[$k,e]} / ${M[$k,y]}")" \
            "$(calc %f "${M[$k,a]} / ${M[$k,c]}")" "$(calc %f "${M[$k,b]} / ${M[$k,d]}")"
        printf '               fan-out (3 hosts / 1 host): rigs %.2f, compress:false %.2f, baseline %.2f, floor (w / y) %.2f; from the best runs: rigs/floor %.2f, fan-out %.2f\n' \
            "$(calc %f "${M[$k,d]} / ${M[$k,c]}")" "$(calc %f "${M[$k,z]} / ${M[$k,e]}")" "$(calc %f "${M[$k,b]} / ${M[$k,a]}")" \
            "$(calc %f "${M[$k,w]} / ${M[$k,y]}")" "$(calc %f "$(med T "$k" c minimum) / $(med T "$k" y minimum)")" \
            "$(calc %f "$(med T "$k" d minimum) / $(med T "$k" c minimum)")"
    done
    if [[ $SKIP_SHAPED != 1 ]]; then
        echo
        echo "shaped link to h1: tc tbf rate $RATE ($(calc %.3f "$RATE_BITS / 8e6") MB/s) burst 32kbit latency 400ms on the controller's veth, one run each;"
        echo "link s: the seconds the link needs for the bytes sent (or, for f4, the gzip -6 archive)"
        printf '%-7s %-6s %-44s %8s %11s %7s %8s\n' engine payload case seconds sent "MB/s" "link s"
        for k in "${KEYS[@]}"; do
            for n in "${SHAPED_NAMES[@]}"; do
                if [[ ${S[$k,$n,b]} == - ]]; then
                    mbs=- link=$(ideal "${INFO[$k,gzip6]}")
                else
                    mbs=$(calc %.3f "${S[$k,$n,b]} / 1e6 / ${S[$k,$n,t]}") link=$(ideal "${S[$k,$n,b]}")
                fi
                printf '%-7s %-6s %-44s %8s %11s %7s %8s\n' "${k%/*}" "${k#*/}" "$n  ${S[$k,$n,d]}" "${S[$k,$n,t]}" "${S[$k,$n,b]}" "$mbs" "$link"
            done
            [[ $k == "${KEYS[-1]}" ]] || echo
        done
    fi
    for e in "${ENGINE_LIST[@]}"; do
        echo
        echo "goals, engine $e (docker ${E_VERSION[$e]}, ${E_STORE[$e]%%,*}):"
        for k in "${KEYS[@]}"; do
            [[ ${k%/*} == "$e" ]] || continue
            p=${k#*/}
            ratio=$(calc %.3f "${M[$k,c]} / ${M[$k,y]}")
            printf '  %-7s %-6s fast link, 1 host: rigs <= 1.25x the floor (c / y)      %6s s / %6s s = %6s  %s\n' \
                "$e" "$p" "${M[$k,c]}" "${M[$k,y]}" "$ratio" "$(verdict "$ratio <= 1.25")"
            ratio=$(calc %.3f "${M[$k,d]} / ${M[$k,c]}")
            printf '  %-7s %-6s fan-out: rigs 3 hosts <= 1.3x 1 host (d / c)            %6s s / %6s s = %6s  %s  (lab floor w / y: %s)\n' \
                "$e" "$p" "${M[$k,d]}" "${M[$k,c]}" "$ratio" "$(verdict "$ratio <= 1.3")" "$(calc %.2f "${M[$k,w]} / ${M[$k,y]}")"
            if [[ $SKIP_SHAPED != 1 ]]; then
                link=$(ideal "${INFO[$k,best]}")
                ratio=$(calc %.3f "${S[$k,f1,t]} / $link")
                printf '  %-7s %-6s slow link: rigs <= 1.1x best codec bytes / bandwidth    %6s s / %6s s = %6s  %s\n' \
                    "$e" "$p" "${S[$k,f1,t]}" "$link" "$ratio" "$(verdict "$ratio <= 1.1")"
                printf '                   rigs sent %s bytes; best codec %s: %s bytes; bandwidth %s = %s bytes/s\n' \
                    "${S[$k,f1,b]}" "${INFO[$k,best_name]}" "${INFO[$k,best]}" "$RATE" "$(calc %.0f "$RATE_BITS / 8")"
                ratio=$(calc %.3f "100 * ${S[$k,f2,b]} / ${S[$k,f1,b]}")
                printf '  %-7s %-6s delta re-ship sends only the new layer (<= 5%% of full)  %s of %s bytes = %s %%  %s (%s s vs %s s)\n' \
                    "$e" "$p" "${S[$k,f2,b]}" "${S[$k,f1,b]}" "$ratio" "$(verdict "$ratio <= 5")" "${S[$k,f2,t]}" "${S[$k,f1,t]}"
            fi
        done
    done
} >"$WORK/results.txt"
cp "$WORK/results.txt" "$RESULTS"
cat "$WORK/results.txt"
log "results written to $RESULTS"
exit
}
