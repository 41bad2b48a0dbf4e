#!/usr/bin/env bash
# Benchmark of `docker::ship` against the usual `docker save | gzip | ssh docker load`.
#
# Builds a throw-away lab on this machine (run as root): one controller docker engine, three
# simulated hosts (each its own dockerd and its own sshd), host h1 behind a veth pair in a
# network namespace of its own so its link can be shaped with tc. Everything listens on
# 127.0.0.1 or on the veth's private addresses only, is started by PID and is torn down on exit.
# See README.md next to this file for what is measured and how to read the output.
#
# Environment knobs (all optional):
#   RIGS=PATH          rigs binary to test (default: target/release/rigs of this checkout, which
#                      the script first brings up to date with cargo build --release)
#   RUNS=3             runs per unshaped case (the median is reported)
#   IMAGE_MB=150       size of the data layer, in MB (10^6 bytes)
#   PAYLOAD=random     what the data layer holds: random (incompressible: the worst case for
#                      compression) or files (this machine's /usr/bin: programs compress about
#                      2.8:1, like the typical application image)
#   LOGIN=rigs-test    the account both rigs and the baseline log in as
#   DELTA_KB=100       size of the extra layer of bench/app:2, in KB (10^3 bytes)
#   RATE=20mbit        rate of the shaped link (tc tbf syntax)
#   SKIP_SHAPED=1      leave out the shaped-link cases (f1-f4)
#   SHAPED_EXTRA=0     on the shaped link, only the full ship and the re-ship (f1, f2)
#   PORT_BASE=2300     sshd of host N listens on PORT_BASE+N
#   STEP_TIMEOUT=900   seconds any single transfer may take before the benchmark fails
#   QUIET_WAIT=30      before each run, wait up to this many seconds for an idle second (0: don't)
#   KEEP_WORK=1        keep the temporary folder (logs) instead of removing it
#   HOLD=1             set up the lab and the images, print how to reach them, wait for Ctrl-C
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RIGS_GIVEN=${RIGS:-}
RIGS=${RIGS:-$REPO/target/release/rigs}
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

[[ $(id -u) -eq 0 ]] || die "run as root (it starts dockerd, sshd and a network namespace)"
for tool in docker dockerd /usr/sbin/sshd ssh ssh-keygen busybox ip tc jq gzip timeout ss awk; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install docker.io openssh-server openssh-client busybox-static iproute2 jq)"
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

cleanup() {
    local rc=$? pid i
    set +e
    trap - EXIT INT TERM
    log "cleaning up"
    cd /
    for pid in "${PIDS_BG[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for pid in "${PIDS_SSHD[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS_DOCKERD[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS_DOCKERD[@]}" "${PIDS_SSHD[@]}"; do
        for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not stop; killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    # Anything still running from the lab (a managed containerd outlives a killed dockerd):
    # only processes whose command line names this run's unique folder.
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [[ $pid != "$$" ]] && grep -qaF -- "$WORK/" "$f" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    if ((NETNS_MADE)); then
        ip link del "$VETH_C" 2>/dev/null
        ip netns del "$NETNS" 2>/dev/null
    fi
    # Mounts an engine left behind, deepest first.
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
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

unset SSH_AUTH_SOCK RIGS_RECIPES RIGS_INVENTORY RIGS_OUTPUT RIGS_KNOWN_HOSTS RIGS_SECRETS DOCKER_CONTEXT
export DOCKER_CLI_HINTS=false

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

# ------------------------------------------------------------------------------------- engines
# engine NAME: start a dockerd with everything of its own under $WORK/NAME, socket $WORK/NAME/sock
start_engine() {
    local name=$1 d=$WORK/$1 i
    mkdir -p "$d/data" "$d/exec"
    printf '{ "exec-opts": ["native.cgroupdriver=cgroupfs"] }\n' >"$d/daemon.json"
    dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" --host "unix://$d/sock" \
        --bridge none --iptables=false --ip6tables=false --group "$LOGIN" >"$d/dockerd.log" 2>&1 &
    PIDS_DOCKERD+=("$!")
}
wait_engine() {
    local name=$1 i
    for ((i = 0; i < 600; i++)); do
        docker -H "unix://$WORK/$name/sock" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -20 "$WORK/$name/dockerd.log" >&2
    die "engine $name did not come up"
}
dk() { local name=$1; shift; docker -H "unix://$WORK/$name/sock" "$@"; }

log "starting 4 docker engines under $WORK"
for e in ctl "${HOSTS[@]}"; do start_engine "$e"; done
for e in ctl "${HOSTS[@]}"; do wait_engine "$e"; done
ENGINE_VERSION=$(dk ctl version --format '{{.Server.Version}}')
CLIENT_VERSION=$(dk ctl version --format '{{.Client.Version}}')

# --------------------------------------------------------------------------------- ssh, netns
if [[ ! -d /run/sshd ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd && MADE_RUN_SSHD=1; fi
ssh-keygen -q -t ed25519 -N '' -C rigs-bench-client -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 644 "$WORK/authorized_keys"
: >"$WORK/known_hosts"

log "network namespace $NETNS with veth $VETH_C ($NET_C) <-> $VETH_H ($NET_H)"
ip netns add "$NETNS"
NETNS_MADE=1
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

start_sshd() {
    local h=$1 d=$WORK/$1
    ssh-keygen -q -t ed25519 -N '' -C "rigs-bench-$h" -f "$d/host_key"
    mkdir -p "$d/cache" && chown "$LOGIN:" "$d/cache" && chmod 755 "$d"
    cat >"$d/sshd_config" <<EOF
ListenAddress ${ADDR[$h]}:${PORT[$h]}
HostKey $d/host_key
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
SetEnv DOCKER_HOST=unix://$d/sock XDG_CACHE_HOME=$d/cache
LogLevel ERROR
EOF
    echo "[${ADDR[$h]}]:${PORT[$h]} $(cut -d' ' -f1,2 "$d/host_key.pub")" >>"$WORK/known_hosts"
    if [[ $h == h1 ]]; then
        ip netns exec "$NETNS" /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" &
    else
        /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" &
    fi
    PIDS_SSHD+=("$!")
}
SSH_OPTS=(-F /dev/null -i "$WORK/client_key" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes)
ssh_host() { local h=$1; shift; ssh "${SSH_OPTS[@]}" -p "${PORT[$h]}" "$LOGIN@${ADDR[$h]}" "$@"; }

log "starting 3 sshd (h1 at ${ADDR[h1]}:${PORT[h1]} in $NETNS, h2/h3 on 127.0.0.1)"
for h in "${HOSTS[@]}"; do start_sshd "$h"; done
for h in "${HOSTS[@]}"; do
    ok=0
    for ((i = 0; i < 100; i++)); do
        # shellcheck disable=SC2016 # expanded by the remote shell
        if got=$(ssh_host "$h" 'echo "$DOCKER_HOST"' 2>/dev/null); then ok=1; break; fi
        sleep 0.1
    done
    ((ok)) || { cat "$WORK/$h/sshd.log" >&2; die "sshd of $h did not answer"; }
    [[ $got == "unix://$WORK/$h/sock" ]] || die "$h: DOCKER_HOST over ssh is '$got'"
    ssh_host "$h" docker version --format '{{.Server.Version}}' >/dev/null ||
        die "$h: docker over ssh does not reach its engine"
done

# ---------------------------------------------------------------------------------- rigs project
PROJ=$WORK/project
mkdir -p "$PROJ/recipes" "$PROJ/inventory"
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

# ------------------------------------------------------------------------------------- images
log "building bench/app:1 (${IMAGE_MB} MB ${PAYLOAD:-random} layer on busybox) and bench/app:2 (+${DELTA_KB} KB)"
ROOT=$WORK/root
mkdir -p "$ROOT/bin" "$ROOT/tmp" "$ROOT/etc"
cp "$(command -v busybox)" "$ROOT/bin/busybox"
for app in sh ls cat head sha256sum; do ln -s busybox "$ROOT/bin/$app"; done
tar -C "$ROOT" -c . | dk ctl import - bench/base:1 >/dev/null
dk ctl create --network none --name bench-build1 bench/base:1 /bin/sh >/dev/null
if [[ ${PAYLOAD:-random} == files ]]; then
    mkdir -p "$WORK/payload.bin"
    total=0
    for f in /usr/bin/*; do
        [[ -f $f && ! -L $f ]] || continue
        cp "$f" "$WORK/payload.bin/"
        total=$((total + $(stat -c %s "$f")))
        ((total < IMAGE_MB * 1000 * 1000)) || break
    done
else
    head -c $((IMAGE_MB * 1000 * 1000)) /dev/urandom >"$WORK/payload.bin"
fi
dk ctl cp "$WORK/payload.bin" bench-build1:/payload.bin
dk ctl commit bench-build1 bench/app:1 >/dev/null
dk ctl rm bench-build1 >/dev/null
rm -rf "$WORK/payload.bin"
head -c $((DELTA_KB * 1000)) /dev/urandom >"$WORK/delta.bin"
dk ctl create --network none --name bench-build2 bench/app:1 /bin/sh >/dev/null
dk ctl cp "$WORK/delta.bin" bench-build2:/delta.bin
dk ctl commit bench-build2 bench/app:2 >/dev/null
dk ctl rm bench-build2 >/dev/null

SIZE1=$(dk ctl image inspect -f '{{.Size}}' bench/app:1)
SIZE2=$(dk ctl image inspect -f '{{.Size}}' bench/app:2)
ID1=$(dk ctl image inspect -f '{{.Id}}' bench/app:1)
ID2=$(dk ctl image inspect -f '{{.Id}}' bench/app:2)
LAYERS2=$(dk ctl image inspect -f '{{len .RootFS.Layers}}' bench/app:2)
SAVE_BYTES=$(dk ctl save bench/app:1 | wc -c)
GZIP_BYTES=$(dk ctl save bench/app:1 | gzip | wc -c)
log "bench/app:1 $SIZE1 bytes ($ID1), save archive $SAVE_BYTES, gzip -6 $GZIP_BYTES; bench/app:2 $SIZE2 bytes, $LAYERS2 layers"

if [[ $HOLD == 1 ]]; then
    cat >&2 <<EOF
lab ready; Ctrl-C (or kill $$) tears it down
  controller engine: export DOCKER_HOST=unix://$WORK/ctl/sock
  host engines:      docker -H unix://$WORK/h1/sock ...   (h2, h3 likewise)
  ssh:               ssh ${SSH_OPTS[*]} -p ${PORT[h1]} $LOGIN@${ADDR[h1]}
  rigs:              cd $PROJ && DOCKER_HOST=unix://$WORK/ctl/sock $RIGS -f recipes -I inv1.toml \\
                       --known-hosts $WORK/known_hosts --output json env:bench ship_ref:bench/app:1
  shape h1's link:   tc qdisc add dev $VETH_C root tbf rate $RATE burst 32kbit latency 400ms
EOF
    trap 'exit 0' INT TERM
    sleep infinity &
    PIDS_BG+=("$!")
    wait "$!"
fi

# ------------------------------------------------------------------------------- the transfers
clean_hosts() {
    local h
    for h in "${HOSTS[@]}"; do
        dk "$h" rmi -f bench/app:1 bench/app:2 >/dev/null 2>&1 || true
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
#   direct: docker save | docker -H HOST_ENGINE load, no ssh       (reference: docker load's limit)
# Sets LAST_T (wall seconds) and LAST_CPU. Each pipeline runs under timeout, which leads a
# process group of its own, so cleanup can stop a whole pipeline.
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
            timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ "unix://$WORK/ctl/sock" bench/app:1 \
                "unix://$WORK/h1/sock" "unix://$WORK/h2/sock" "unix://$WORK/h3/sock" \
                "$WORK/fifo1" "$WORK/fifo2" 2>>"$WORK/baseline.err" &
            pids+=("$!")
            PIDS_BG+=("$!")
            break
        elif [[ $mode == direct ]]; then
            timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ \
                "unix://$WORK/ctl/sock" bench/app:1 "unix://$WORK/$h/sock" 2>>"$WORK/baseline.err" &
        else
            timeout "$STEP_TIMEOUT" bash -o pipefail -c "$pipe" _ \
                "unix://$WORK/ctl/sock" bench/app:1 "${SSH_OPTS[@]}" -p "${PORT[$h]}" "$LOGIN@${ADDR[$h]}" \
                2>>"$WORK/baseline.err" &
        fi
        pids+=("$!")
        PIDS_BG+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
    LAST_T=$(since "$t0")
    LAST_CPU=$(cpu_pct "$c0")
    PIDS_BG=()
    ((fail == 0)) || { tail -20 "$WORK/baseline.err" >&2; die "baseline pipeline ($mode) failed"; }
    for h in "$@"; do check_image "$h" bench/app:1 "$ID1"; done
}
# rigs_ship INVENTORY TASK REF LABEL: sets LAST_T (wall seconds), LAST_CPU and LAST_B
# (bytes_sent, total over the hosts, from the JSON summary on the last line of stdout).
RUN_NO=0
rigs_ship() {
    local inv=$1 task=$2 ref=$3 label=$4 t0 c0 out err summary n ok
    RUN_NO=$((RUN_NO + 1))
    out=$WORK/rigs-$RUN_NO-$label.json
    err=$WORK/rigs-$RUN_NO-$label.err
    c0=$(cpu_snap)
    t0=$(now)
    if ! DOCKER_HOST=unix://$WORK/ctl/sock XDG_CACHE_HOME=$WORK/cache timeout --foreground "$STEP_TIMEOUT" "$RIGS" -f recipes -I "$inv" \
        --known-hosts "$WORK/known_hosts" --output json env:bench "$task:$ref" >"$out" 2>"$err"; then
        log "rigs failed: (cd $PROJ && DOCKER_HOST=unix://$WORK/ctl/sock $RIGS -f recipes -I $inv --known-hosts $WORK/known_hosts --output json env:bench $task:$ref)"
        tail -n 20 "$out" "$err" >&2
        die "rigs $task:$ref failed"
    fi
    LAST_T=$(since "$t0")
    LAST_CPU=$(cpu_pct "$c0")
    summary=$(tail -n 1 "$out")
    [[ $(jq -r .event <<<"$summary") == summary ]] || die "last line of rigs output is not the summary: $summary"
    n=$(jq '.hosts | length' <<<"$summary")
    ok=$(jq .ok <<<"$summary")
    [[ $ok == "$n" && $n -gt 0 ]] || die "rigs summary: $ok of $n hosts ok: $summary"
    LAST_B=$(jq .bytes_sent <<<"$summary")
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

# One run of a case, image removed from every host first; stores T, C and B[case,run].
declare -A T C B
run_case() { # CASE RUN
    local c=$1 r=$2 h
    clean_hosts
    LAST_B=-
    case $c in
        a) baseline gzip h1 ;;
        b) baseline gzip "${HOSTS[@]}" ;;
        c) rigs_ship inv1.toml ship_ref bench/app:1 c ;;
        d) rigs_ship inv3.toml ship_ref bench/app:1 d ;;
        e) rigs_ship inv1.toml ship_raw bench/app:1 e ;;
        x) baseline raw h1 ;;
        y) baseline direct h1 ;;
        z) rigs_ship inv3.toml ship_raw bench/app:1 z ;;
        w) baseline tee3 "${HOSTS[@]}" ;;
    esac
    if [[ $c == [dzbw] ]]; then
        for h in "${HOSTS[@]}"; do check_image "$h" bench/app:1 "$ID1"; done
    else
        check_image h1 bench/app:1 "$ID1"
    fi
    # shellcheck disable=SC2034 # C is read through med's nameref
    T[$c,$r]=$LAST_T C[$c,$r]=$LAST_CPU B[$c,$r]=$LAST_B
    log "  $(printf '%-46s %6s s  cpu %3s%%  sent %s' "$c ${DESC[$c]}" "$LAST_T" "$LAST_CPU" "$LAST_B")"
}
CASES=(a b c d e)   # the comparison asked for
REFS=(x y w z)      # references that explain it
declare -A DESC=(
    [a]="baseline save|gzip|ssh|load, 1 host"
    [b]="baseline, 3 hosts (3 pipelines at once)"
    [c]="rigs docker::ship, 1 host (default)"
    [d]="rigs docker::ship, 3 hosts"
    [e]="rigs docker::ship compress:false, 1 host"
    [x]="ref: save|ssh|load (no gzip), 1 host"
    [y]="ref: save|docker load, no ssh, 1 host"
    [w]="ref: save|tee|3x docker load, no ssh"
    [z]="ref: rigs compress:false, 3 hosts"
)
cd "$PROJ"
for ((r = 1; r <= RUNS; r++)); do
    log "round $r of $RUNS"
    # Baseline and rigs alternate.
    for c in a c b d e x z y w; do quiet; run_case "$c" "$r"; done
done

# --------------------------------------------------------------------------------- shaped link
declare -A S      # S[name,t|b] for the shaped cases
SHAPED_CASES=()
shaped() { # NAME DESCRIPTION KIND TASK REF ID
    local name=$1 desc=$2 kind=$3 task=$4 ref=$5 id=$6
    quiet
    log "  $name $desc"
    if [[ $kind == baseline ]]; then
        baseline gzip h1
        S[$name,b]=-
    else
        rigs_ship inv1.toml "$task" "$ref" "$name"
        S[$name,b]=$LAST_B
    fi
    check_image h1 "$ref" "$id"
    S[$name,t]=$LAST_T S[$name,d]=$desc
    SHAPED_CASES+=("$name")
    log "     ${LAST_T} s, sent ${S[$name,b]}"
}
if [[ $SKIP_SHAPED != 1 ]]; then
    log "shaping $VETH_C: tbf rate $RATE burst 32kbit latency 400ms (each full send takes a minute or more)"
    tc qdisc add dev "$VETH_C" root tbf rate "$RATE" burst 32kbit latency 400ms
    clean_hosts
    shaped f1 "rigs full ship of app:1 (host empty)" rigs ship_ref bench/app:1 "$ID1"
    shaped f2 "rigs re-ship app:2 (host has app:1)" rigs ship_ref bench/app:2 "$ID2"
    if [[ $SHAPED_EXTRA == 1 ]]; then
        clean_hosts
        shaped f3 "ref: rigs compress:false full app:1" rigs ship_raw bench/app:1 "$ID1"
        clean_hosts
        shaped f4 "ref: baseline save|gzip|ssh|load app:1" baseline - bench/app:1 "$ID1"
    fi
    tc qdisc del dev "$VETH_C" root
fi

# ------------------------------------------------------------------------------------- report
med() { # ARRAY CASE [minimum]: the median (or the minimum) over the runs
    local -n values=$1
    local c=$2 how=${3:-median} r v=()
    for ((r = 1; r <= RUNS; r++)); do v+=("${values[$c,$r]}"); done
    "$how" "${v[@]}"
}
declare -A M
for c in "${CASES[@]}" "${REFS[@]}"; do M[$c]=$(med T "$c"); done
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo FAIL; }
row() { # CASE
    local c=$1 r runs=() sent=-
    for ((r = 1; r <= RUNS && r <= 3; r++)); do runs+=("${T[$c,$r]}"); done
    while ((${#runs[@]} < 3)); do runs+=(-); done
    [[ ${B[$c,1]} == - ]] || sent=$(med B "$c")
    printf '%-44s %6s %6s %6s %7s %6s %6s %5s %11s\n' "$c  ${DESC[$c]}" "${runs[@]}" "${M[$c]}" \
        "$(calc %.1f "$SIZE1 / 1e6 / ${M[$c]}")" "$(med T "$c" minimum)" "$(med C "$c")" "$sent"
}
{
    echo "rigs ship benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) cores ($CPU), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1e6 }' /proc/meminfo) RAM, Linux $(uname -r)"
    echo "docker engine $ENGINE_VERSION (4 engines: controller + 3 hosts), docker client $CLIENT_VERSION, $(ssh -V 2>&1 | cut -d, -f1)"
    echo "$RIGS_VERSION at commit $COMMIT"
    echo "image bench/app:1: $SIZE1 bytes ($(calc %.1f "$SIZE1 / 1e6") MB, docker image inspect .Size), 2 layers, ${PAYLOAD:-random} data;"
    echo "  docker save archive $SAVE_BYTES bytes, gzip -6 of it $GZIP_BYTES bytes"
    echo "runs that started on a busy machine (other work >15% CPU for ${QUIET_WAIT} s): $BUSY_STARTS"
    echo "load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg); whole benchmark $(calc %.0f "$(now) - $T_START") s"
    echo "seconds: wall time per run; MB/s: image size / median (per host: each host gets the whole image);"
    echo "best: the fastest run (least disturbed by anything else running on the machine);"
    echo "cpu%: median share of all $(nproc) cores busy during the run (hosts share the cores); sent: rigs bytes_sent"
    echo
    printf '%-44s %6s %6s %6s %7s %6s %6s %5s %11s\n' case run1 run2 run3 median "MB/s" best "cpu%" sent
    for c in "${CASES[@]}"; do row "$c"; done
    for c in "${REFS[@]}"; do row "$c"; done
    echo
    R_CA=$(calc %.2f "${M[a]} / ${M[c]}")
    R_DB=$(calc %.2f "${M[b]} / ${M[d]}")
    R_EA=$(calc %.2f "${M[a]} / ${M[e]}")
    FAN_RIGS=$(calc %.2f "${M[d]} / ${M[c]}")
    FAN_RAW=$(calc %.2f "${M[z]} / ${M[e]}")
    FAN_BASE=$(calc %.2f "${M[b]} / ${M[a]}")
    FAN_LAB=$(calc %.2f "${M[w]} / ${M[y]}")
    echo "rigs/baseline throughput (baseline s / rigs s): 1 host $R_CA x, 3 hosts $R_DB x, compress:false 1 host $R_EA x"
    echo "  the same from the best runs: 1 host $(calc %.2f "$(med T a minimum) / $(med T c minimum)") x, 3 hosts $(calc %.2f "$(med T b minimum) / $(med T d minimum)") x; rigs fan-out $(calc %.2f "$(med T d minimum) / $(med T c minimum)")"
    echo "fan-out (3 hosts s / 1 host s): rigs $FAN_RIGS, rigs compress:false $FAN_RAW, baseline $FAN_BASE;"
    echo "  the lab's own floor, docker load alone (w / y): $FAN_LAB (the 3 hosts share this machine's cores and disk)"
    if [[ $SKIP_SHAPED != 1 ]]; then
        echo
        echo "shaped link to h1: tc tbf rate $RATE burst 32kbit latency 400ms on the controller's veth, one run each"
        printf '%-44s %8s %11s %7s\n' case seconds sent "MB/s"
        for n in "${SHAPED_CASES[@]}"; do
            if [[ ${S[$n,b]} == - ]]; then mbs=-; else mbs=$(calc %.3f "${S[$n,b]} / 1e6 / ${S[$n,t]}"); fi
            printf '%-44s %8s %11s %7s\n' "$n  ${S[$n,d]}" "${S[$n,t]}" "${S[$n,b]}" "$mbs"
        done
        DELTA_PCT=$(calc %.3f "100 * ${S[f2,b]} / ${S[f1,b]}")
        echo "re-ship / full ship: bytes $(calc %.5f "${S[f2,b]} / ${S[f1,b]}") ($DELTA_PCT %), time $(calc %.3f "${S[f2,t]} / ${S[f1,t]}")"
    fi
    echo
    echo "goals:"
    echo "  rigs >= 2x baseline throughput to one host: $R_CA x  $(verdict "$R_CA >= 2")"
    echo "  rigs 3-host time <= 1.3x one-host time:     $FAN_RIGS  $(verdict "$FAN_RIGS <= 1.3")"
    if [[ $SKIP_SHAPED != 1 ]]; then
        echo "  delta re-ship <= 5% of full bytes:          $DELTA_PCT %  $(verdict "$DELTA_PCT <= 5")"
    fi
} >"$WORK/results.txt"
cp "$WORK/results.txt" "$RESULTS"
cat "$WORK/results.txt"
log "results written to $RESULTS"
