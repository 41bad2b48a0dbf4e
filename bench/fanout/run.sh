#!/usr/bin/env bash
# Fan-out benchmark: rigs against parallel OpenSSH clients (and, when they install, Fabric 3,
# pyinfra and Ansible) running one command, and ten commands, on N loopback SSH targets.
#
#   sudo bench/fanout/run.sh [-r RUNS] [--no-build] [--no-python] [N ...]    (default N: 1 10 100 1000)
#
# Every target is an address:port on 127.0.x.y (never 127.0.0.1) served by sshd daemons that this
# script starts by PID, 16 listeners each, and stops on exit. All tools log in as the unprivileged
# account rigs-test (/bin/sh, no shell start-up files) with one client key and verify every host
# key against one known_hosts file. See README.md next to this file for what is measured.
#
# Options:
#   -r, --runs R     runs per cell, the median is reported (default 3)
#   --no-build       do not run `cargo build --release` first
#   --no-python      leave out Fabric, pyinfra and Ansible
#   -h, --help       this text
# Environment knobs (all optional):
#   RIGS=PATH            rigs binary to test (default target/release/rigs, built first)
#   NET_BASE=40          targets are 127.0.NET_BASE.1, .2, ... (250 per third octet)
#   PORT_BASE=2600       target ports are PORT_BASE+1 .. PORT_BASE+PORTS_PER_ADDR
#   PORTS_PER_ADDR=1     targets per address (several ports each when > 1)
#   PER_DAEMON=16        listeners per sshd (at most 16)
#   NOFILE=65536         open-file limit set for the script, the daemons and every tool
#   PY_MAX_N=100         run the Python tools only for N up to this (they need a thread, or a
#                        process, per host)
#   VENV=/tmp/rigs-fanout-venv   virtualenv for the Python tools (created when missing)
#   STEP_TIMEOUT=900     seconds one measured run may take before it counts as failed
#   QUIET_WAIT=10        before each run, wait up to this many seconds for the CPUs to be idle
#   LIST_RUNS=10         runs of `rigs --list` on 50 tasks
#   KEEP_WORK=0          1: keep the temporary folder (logs, configs); kept anyway when a run failed
#   HOLD=0               1: start the targets, print how to reach them, wait for Ctrl-C (no runs)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RESULTS=$HERE/results-latest.txt

RUNS=3
BUILD=1
PYTHON_TOOLS=1
NS=()
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
    -r | --runs) [[ $# -ge 2 ]] || { echo "missing value for $1" >&2; exit 2; }; RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --no-build) BUILD=0; shift ;;
    --no-python) PYTHON_TOOLS=0; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) NS+=("$1"); shift ;;
    esac
done
((${#NS[@]})) || NS=(1 10 100 1000)

RIGS_GIVEN=${RIGS:-}
RIGS=${RIGS:-$REPO/target/release/rigs}
NET_BASE=${NET_BASE:-40}
PORT_BASE=${PORT_BASE:-2600}
PORTS_PER_ADDR=${PORTS_PER_ADDR:-1}
PER_DAEMON=${PER_DAEMON:-16}
NOFILE=${NOFILE:-65536}
PY_MAX_N=${PY_MAX_N:-100}
VENV=${VENV:-/tmp/rigs-fanout-venv}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
QUIET_WAIT=${QUIET_WAIT:-10}
LIST_RUNS=${LIST_RUNS:-10}
KEEP_WORK=${KEEP_WORK:-0}
HOLD=${HOLD:-0}
USER_NAME=rigs-test
MAX_P=1000 # cap of xargs -P

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

is_uint "$RUNS" && ((RUNS >= 1)) || die "--runs wants a positive number, not '$RUNS'"
MAXN=0
for n in "${NS[@]}"; do
    is_uint "$n" && ((n >= 1)) || die "N values are positive numbers, not '$n'"
    ((n > MAXN)) && MAXN=$n
done
((PER_DAEMON >= 1 && PER_DAEMON <= 16)) || die "PER_DAEMON must be 1..16 (sshd's limit of listen sockets)"
((PORTS_PER_ADDR >= 1)) || die "PORTS_PER_ADDR must be >= 1"
ADDRS_NEEDED=$(((MAXN + PORTS_PER_ADDR - 1) / PORTS_PER_ADDR))
((NET_BASE >= 1 && NET_BASE + (ADDRS_NEEDED - 1) / 250 <= 255)) ||
    die "NET_BASE=$NET_BASE: 127.0.$NET_BASE.1 onwards cannot hold $ADDRS_NEEDED addresses"
((PORT_BASE + PORTS_PER_ADDR <= 65535)) || die "PORT_BASE too high"

[[ $(id -u) -eq 0 ]] || die "run as root (it starts sshd daemons and may create the account $USER_NAME)"
for tool in /usr/sbin/sshd ssh ssh-keygen xargs timeout ss awk sort; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install openssh-server openssh-client)"
done

# Raise the open-file limit for this script and everything it starts (root may raise the hard one).
ulimit -Hn "$NOFILE" 2>/dev/null || true
ulimit -Sn "$NOFILE" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
if [[ $(ulimit -n) != unlimited ]] && (($(ulimit -n) < NOFILE)); then
    log "note: open-file limit is $(ulimit -n), not $NOFILE (the hard limit cannot be raised here: no CAP_SYS_RESOURCE?)"
fi

T_START=$EPOCHREALTIME
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WORK=$(mktemp -d /tmp/rigs-fanout.XXXXXX)
chmod 755 "$WORK" # the authorized_keys inside is read with the user's rights
SSHD_PIDS=()
MADE_POLICY=0
MADE_RUN_SSHD=0
FAILED_RUNS=0

close_masters() { # every ControlMaster socket under $1
    local dir=$1
    [[ -d $dir ]] || return 0
    find "$dir" -type s -print0 2>/dev/null |
        xargs -0 -r -P 64 -I{} ssh -F /dev/null -o BatchMode=yes -S {} -O exit _ >/dev/null 2>&1 || true
}

cleanup() {
    local rc=$? pid i
    set +e
    trap - EXIT INT TERM
    ((MADE_POLICY)) && rm -f /usr/sbin/policy-rc.d
    close_masters "$WORK/cm"
    close_masters "$WORK/ansible"
    for pid in "${SSHD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${SSHD_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    ((MADE_RUN_SSHD)) && rmdir /run/sshd 2>/dev/null
    if ((KEEP_WORK || FAILED_RUNS || rc != 0)); then
        log "kept $WORK (logs under $WORK/logs, daemon logs under $WORK/sshd)"
    else
        rm -rf "$WORK"
    fi
    ((rc != 0)) && log "failed (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unset SSH_AUTH_SOCK RIGS_RECIPES RIGS_INVENTORY RIGS_OUTPUT RIGS_KNOWN_HOSTS RIGS_SECRETS

apt_install() { # Debian packages, with no service started by their scripts
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        MADE_POLICY=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"$WORK/apt.log" 2>&1 ||
        { apt-get update -q >>"$WORK/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$WORK/apt.log" 2>&1; } ||
        { tail -5 "$WORK/apt.log" >&2; die "apt-get install $* failed"; }
    if ((MADE_POLICY)); then rm -f /usr/sbin/policy-rc.d; MADE_POLICY=0; fi
}
[[ -x /usr/bin/time ]] || { log "installing package time (for /usr/bin/time)"; apt_install time; }
TIME=/usr/bin/time

if ! id "$USER_NAME" >/dev/null 2>&1; then
    log "creating the account $USER_NAME (shell /bin/sh)"
    useradd --create-home --shell /bin/sh "$USER_NAME"
fi
USER_SHELL=$(getent passwd "$USER_NAME" | cut -d: -f7)
[[ $USER_SHELL == /bin/sh ]] ||
    log "warning: $USER_NAME's shell is $USER_SHELL, not /bin/sh: its start-up files are part of every command"
if [[ ! -d /run/sshd ]]; then mkdir -m 755 /run/sshd; MADE_RUN_SSHD=1; fi

# ---------------------------------------------------------------------------------------- rigs
BUILD_NOTE=
if [[ -z $RIGS_GIVEN ]] && ((BUILD)); then
    log "cargo build --release (a no-op when target/release/rigs is up to date; minutes otherwise)"
    if ! (cd "$REPO" && cargo build --release) >"$WORK/cargo.log" 2>&1; then
        tail -20 "$WORK/cargo.log" >&2
        [[ -x $RIGS ]] || die "cargo build failed and there is no $RIGS"
        log "warning: cargo build failed; measuring the existing $RIGS"
        BUILD_NOTE=" (cargo build failed; binary may be older than the tree)"
    fi
fi
[[ -x $RIGS ]] || die "no rigs binary at $RIGS (build it, or set RIGS=PATH)"
RIGS_DESC="$RIGS, built $(date -r "$RIGS" '+%Y-%m-%d %H:%M')$BUILD_NOTE"
if GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null); then
    [[ -n $(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]] && GIT_REV+=" + uncommitted changes in src"
    RIGS_DESC+=", tree $GIT_REV"
fi

# ------------------------------------------------------------------------------------- targets
KEY=$WORK/client_key
KH=$WORK/known_hosts
HOSTS=$WORK/hosts.txt # PORT ADDRESS NAME, one target a line
ssh-keygen -q -t ed25519 -N '' -C rigs-fanout-client -f "$KEY"
mkdir -m 755 "$WORK/auth"
install -m 644 "$KEY.pub" "$WORK/auth/authorized_keys"
: >"$KH"

addr_of() { # target index (0-based) -> address
    local a=$(($1 / PORTS_PER_ADDR))
    echo "127.0.$((NET_BASE + a / 250)).$((1 + a % 250))"
}
port_of() { echo $((PORT_BASE + 1 + $1 % PORTS_PER_ADDR)); }

# Refuse to start when something already listens where a target would.
for ((i = 0; i < MAXN; i++)); do
    a=$((i / PORTS_PER_ADDR))
    printf '%s 127.0.%s.%s t%04d\n' $((PORT_BASE + 1 + i % PORTS_PER_ADDR)) $((NET_BASE + a / 250)) $((1 + a % 250)) $((i + 1))
done >"$HOSTS"
taken=$(ss -Hltn | awk '{ print $4 }' | awk 'NR == FNR { l[$1] = 1; next }
    ($2 ":" $1) in l || ("0.0.0.0:" $1) in l || ("*:" $1) in l || ("[::]:" $1) in l { print $2 ":" $1; exit }' - "$HOSTS")
[[ -z $taken ]] || die "$taken (or the wildcard on its port) is already in use; set PORT_BASE or NET_BASE"

DAEMONS=$(((MAXN + PER_DAEMON - 1) / PER_DAEMON))
log "starting $DAEMONS sshd daemons for $MAXN targets ($(addr_of 0) .. $(addr_of $((MAXN - 1))), ports $(port_of 0)..$(port_of $((PORTS_PER_ADDR - 1))))"
mapfile -t TARGET_LINES <"$HOSTS"
for ((d = 0; d < DAEMONS; d++)); do
    dir=$WORK/sshd/d$(printf %03d "$d")
    mkdir -p "$dir" "$WORK/home/d$d"
    chown "$USER_NAME:" "$WORK/home/d$d"
    ssh-keygen -q -t ed25519 -N '' -C "rigs-fanout-d$d" -f "$dir/host_ed25519"
    hostkey=$(cut -d' ' -f1-2 "$dir/host_ed25519.pub")
    {
        for ((i = d * PER_DAEMON; i < (d + 1) * PER_DAEMON && i < MAXN; i++)); do
            read -r port addr _ <<<"${TARGET_LINES[i]}"
            echo "ListenAddress $addr:$port"
            echo "[$addr]:$port $hostkey" >>"$KH"
        done
        cat <<EOF
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $WORK/auth/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_NAME
# Both names of the same algorithm: paramiko (Fabric, pyinfra) only knows the @libssh.org one.
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
MaxStartups 1000:30:2000
MaxSessions 50
LogLevel VERBOSE
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
PermitUserEnvironment no
# The targets of this daemon share a home of their own, so that what a tool leaves in \$HOME
# (rigs appends to ~/.rigs/history.jsonl) stays in this run's folder, not in the account's home.
SetEnv HOME=$WORK/home/d$d
EOF
    } >"$dir/sshd_config"
    listeners=$(grep -c '^ListenAddress' "$dir/sshd_config")
    echo "$listeners" >"$dir/listeners"
done
/usr/sbin/sshd -t -f "$WORK/sshd/d000/sshd_config" || die "sshd rejects the generated configuration"
for ((d = 0; d < DAEMONS; d++)); do
    dir=$WORK/sshd/d$(printf %03d "$d")
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
    SSHD_PIDS+=($!)
done
deadline=$((SECONDS + 30))
for ((d = 0; d < DAEMONS; d++)); do
    dir=$WORK/sshd/d$(printf %03d "$d")
    want=$(<"$dir/listeners")
    until [[ -f $dir/sshd.log ]] && (($(grep -c 'Server listening on' "$dir/sshd.log") >= want)); do
        kill -0 "${SSHD_PIDS[d]}" 2>/dev/null || { cat "$dir/sshd.log" >&2; die "sshd $d exited"; }
        ((SECONDS < deadline)) || die "sshd $d is not listening after 30 s (see $dir/sshd.log)"
        sleep 0.05
    done
done

SSH_OPTS=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$KH"
    -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -i "$KEY" -o ConnectTimeout=30 -o LogLevel=ERROR)
read -r port addr _ <"$HOSTS"
smoke=$(ssh "${SSH_OPTS[@]}" -p "$port" "$USER_NAME@$addr" 'echo ok; echo "$SHELL"; echo "$HOME"') ||
    die "ssh to the first target failed (see $WORK/sshd/d000/sshd.log)"
[[ $smoke == "ok"$'\n'"/bin/sh"$'\n'"$WORK/home/d0" ]] || die "unexpected answer from the first target: $smoke"
KEX=$(ssh "${SSH_OPTS[@]}" -o LogLevel=VERBOSE -p "$port" "$USER_NAME@$addr" true 2>&1 |
    sed -n 's/.*kex: algorithm: \(.*\)/\1/p' | head -n 1)
KEX=${KEX:-curve25519-sha256}

# --------------------------------------------------------------------------- projects and files
PROJ=$WORK/proj
mkdir -p "$PROJ/recipes" "$PROJ/inventory" "$WORK/logs" "$WORK/cm" "$WORK/bin"
cat >"$PROJ/recipes/bench.rhai" <<'EOF'
/// One command.
fn one() { run("echo ok"); }

/// Ten commands, one after the other.
fn ten() { for i in 0..10 { run("echo ok"); } }
EOF
{
    printf '[defaults]\nuser = "%s"\nidentity = "%s"\n\n' "$USER_NAME" "$KEY"
    for n in "${NS[@]}"; do
        printf '[env.n%s]\nhosts = [' "$n"
        head -n "$n" "$HOSTS" | awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $3 }'
        printf ']\n\n'
    done
    while read -r port addr name; do
        printf '[hosts.%s]\naddress = "%s"\nport = %s\n' "$name" "$addr" "$port"
    done <"$HOSTS"
} >"$PROJ/inventory/bench.toml"

# Ten commands over an open ControlMaster: $1 socket, the rest the destination.
cat >"$WORK/bin/ten-over-master" <<'EOF'
#!/bin/sh
sock=$1
shift
i=0
while [ "$i" -lt 10 ]; do
    ssh -F /dev/null -o BatchMode=yes -o ControlMaster=no -S "$sock" "$@" 'echo ok' || exit 1
    i=$((i + 1))
done
EOF
chmod 755 "$WORK/bin/ten-over-master"

# ------------------------------------------------------------------------------- Python tools
PY_TOOLS=()
PY_NOTE=
if ((PYTHON_TOOLS)); then
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import fabric, pyinfra, ansible' 2>/dev/null; then
        log "setting up $VENV with fabric, pyinfra and ansible-core (pip)"
        { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q fabric pyinfra ansible-core; } >"$WORK/pip.log" 2>&1 ||
            log "warning: pip install failed (tail of the log follows); tools that did not install are skipped"
        tail -3 "$WORK/pip.log" >&2 || true
    fi
    for t in fabric pyinfra ansible; do
        if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c "import $t" 2>/dev/null; then
            PY_TOOLS+=("$t")
        else
            PY_NOTE+="$t: not installed, skipped. "
            log "skipping $t: not importable from $VENV"
        fi
    done
    TOOL_VERSIONS=$("$VENV/bin/python" - 2>/dev/null <<'EOF' || true
from importlib.metadata import version
out = []
for p in ("fabric", "paramiko", "pyinfra", "ansible-core"):
    try:
        out.append(f"{p} {version(p)}")
    except Exception:
        pass
print(", ".join(out))
EOF
)
else
    PY_NOTE="Python tools left out (--no-python). "
fi
mkdir -p "$WORK/py" "$WORK/ansible/tmp"
cat >"$WORK/py/fab.py" <<'EOF'
# Fabric 3: a ThreadingGroup over the first N targets, host keys checked against one file.
import sys
import paramiko
from fabric import Connection, ThreadingGroup
from fabric.exceptions import GroupException

n, mode, hosts_file, key, known_hosts, user = sys.argv[1:7]
conns = []
with open(hosts_file) as f:
    for line in f.read().splitlines()[: int(n)]:
        port, addr, _name = line.split()
        c = Connection(addr, user=user, port=int(port), connect_timeout=30,
                       connect_kwargs={"key_filename": [key], "look_for_keys": False,
                                       "allow_agent": False})
        c.client.load_host_keys(known_hosts)
        c.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        conns.append(c)
group = ThreadingGroup.from_connections(conns)
status = 0
try:
    for _ in range(1 if mode == "one" else 10):
        try:
            results = group.run("echo ok", hide=True)
        except GroupException as e:
            results = e.result
            status = 1
        for c, r in results.items():
            if isinstance(r, Exception):
                print(f"[{c.host}:{c.port}] error: {r!r}", file=sys.stderr)
            else:
                print(f"[{c.host}:{c.port}] {r.stdout.strip()}")
        if status:
            break
finally:
    group.close()
sys.exit(status)
EOF
cat >"$WORK/py/ten.py" <<'EOF'
from pyinfra.operations import server

for i in range(10):
    server.shell(name=f"echo ok {i}", commands=["echo ok"])
EOF
{
    echo '- hosts: bench'
    echo '  gather_facts: false'
    echo '  tasks:'
    for i in $(seq 10); do printf '    - name: echo ok %s\n      raw: echo ok\n' "$i"; done
} >"$WORK/py/ten.yml"
for n in "${NS[@]}"; do
    {
        echo "hosts = ["
        head -n "$n" "$HOSTS" | while read -r port addr name; do
            printf '    ("%s", {"ssh_hostname": "%s", "ssh_port": %s}),\n' "$name" "$addr" "$port"
        done
        echo "]"
    } >"$WORK/py/inv_n$n.py"
    {
        echo "[bench]"
        head -n "$n" "$HOSTS" | while read -r port addr name; do
            echo "$name ansible_host=$addr ansible_port=$port"
        done
        echo "[bench:vars]"
        echo "ansible_user=$USER_NAME"
        echo "ansible_ssh_private_key_file=$KEY"
    } >"$WORK/py/inv_n$n.ini"
done
# Settings every pyinfra host shares, as command-line data.
PYINFRA_DATA=(--data "ssh_user=$USER_NAME" --data "ssh_key=$KEY" --data "ssh_known_hosts_file=$KH"
    --data ssh_strict_host_key_checking=yes)
export ANSIBLE_HOME=$WORK/ansible ANSIBLE_LOCAL_TEMP=$WORK/ansible/tmp ANSIBLE_HOST_KEY_CHECKING=True
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=False ANSIBLE_DEPRECATION_WARNINGS=False
: >"$WORK/ansible/ansible.cfg"
export ANSIBLE_SSH_RETRIES=0 ANSIBLE_TIMEOUT=30 ANSIBLE_CONFIG=$WORK/ansible/ansible.cfg
ANSIBLE_BASE_ARGS="-o UserKnownHostsFile=$KH -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"

if ((HOLD)); then
    log "targets are up; for example (from $WORK):"
    log "  $RIGS -f $PROJ/recipes -I $PROJ/inventory --known-hosts $KH --output plain env:n$MAXN one"
    log "  ssh ${SSH_OPTS[*]} -p $(head -n 1 "$HOSTS" | cut -d' ' -f1) $USER_NAME@$(head -n 1 "$HOSTS" | cut -d' ' -f2) 'echo ok'"
    log "holding; Ctrl-C (or kill -TERM $$) stops the daemons"
    trap 'exit 0' INT TERM
    sleep infinity &
    wait $! || true
    exit 0
fi

# ---------------------------------------------------------------------------------- measuring
# rigs keeps a controller-side history in ./.rigs of the folder it runs in: run in this one.
cd "$WORK"
RESULTS_TSV=$WORK/results.tsv # N tool rep wall cpu rss_kb ok logins sessions emfile
: >"$RESULTS_TSV"

cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $5 }' /proc/stat; }
wait_quiet() { # up to QUIET_WAIT seconds for half a second with the CPUs at least 85% idle
    local end=$((SECONDS + QUIET_WAIT)) b1 i1 b2 i2
    while :; do
        read -r b1 i1 < <(cpu_ticks)
        sleep 0.5
        read -r b2 i2 < <(cpu_ticks)
        (((i2 - i1) * 100 >= 85 * (b2 - b1 + i2 - i1))) && return 0
        ((SECONDS < end)) || { log "  (machine busy: measuring anyway)"; return 0; }
    done
}
sshd_count() { cat "$WORK"/sshd/d*/sshd.log | grep -c -e "$1" || true; }

# measure TOOL N REP EXPECTED_OK_LINES OK_REGEX -- COMMAND...
# Runs COMMAND under /usr/bin/time with a timeout; the run is good when it exits 0 and its output
# (stdout and stderr) has EXPECTED_OK_LINES lines matching OK_REGEX (0: exit status only).
measure() {
    local tool=$1 n=$2 rep=$3 expect=$4 regex=$5 base rc=0 t0 t1 wall u s m okl logins0 sess0 logins sess ok emfile=0
    shift 6
    base=$WORK/logs/$tool.n$n.r$rep
    wait_quiet
    logins0=$(sshd_count 'Accepted publickey')
    sess0=$(sshd_count 'Starting session:')
    t0=$EPOCHREALTIME
    timeout -k 10 "$STEP_TIMEOUT" "$TIME" -o "$base.time" -f '%e %U %S %M' "$@" >"$base.out" 2>"$base.err" || rc=$?
    t1=$EPOCHREALTIME
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [[ -s $base.time ]] && read -r _ u s m < <(tail -n 1 "$base.time") && [[ $m =~ ^[0-9]+$ ]]; then
        :
    else
        u=0 s=0 m=0
    fi
    logins=$(($(sshd_count 'Accepted publickey') - logins0))
    sess=$(($(sshd_count 'Starting session:') - sess0))
    okl=$(cat "$base.out" "$base.err" | grep -cE -- "$regex" || true)
    ok=1
    ((rc == 0)) || ok=0
    ((expect == 0 || okl == expect)) || ok=0
    grep -qi 'too many open files' "$base.out" "$base.err" && emfile=1
    ((ok)) || FAILED_RUNS=$((FAILED_RUNS + 1))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$tool" "$rep" "$wall" \
        "$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')" "$m" "$ok" "$logins" "$sess" "$emfile" >>"$RESULTS_TSV"
    if ((ok)); then
        log "  $tool n=$n run $rep: ${wall}s cpu $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')s rss $((m / 1024))MB logins $logins sessions $sess"
    else
        log "  $tool n=$n run $rep: FAILED (exit $rc, $okl of $expect ok lines, ${wall}s, logins $logins) - $base.{out,err}"
        tail -n 5 "$base.err" | sed 's/^/      /' >&2
    fi
}

rigs_run() { # N REP TASK
    local n=$1 rep=$2 task=$3 per=1
    [[ $task == ten ]] && per=10
    measure "rigs-$task" "$n" "$rep" $((n * per)) '^\[t[0-9]+\] ok$' -- \
        "$RIGS" -f "$PROJ/recipes" -I "$PROJ/inventory" --known-hosts "$KH" --output plain "env:n$n" "$task"
}
ssh_parallel() { # N REP: one fresh ssh per host, all in parallel
    local n=$1 rep=$2 p=$1
    ((p > MAX_P)) && p=$MAX_P
    head -n "$n" "$HOSTS" | awk -v u="$USER_NAME" '{ print $1, u "@" $2, "echo ok" }' >"$WORK/xargs-in.txt"
    measure ssh-par "$n" "$rep" "$n" '^ok$' -- \
        xargs -a "$WORK/xargs-in.txt" -P "$p" -L 1 ssh "${SSH_OPTS[@]}" -p
}
cm_ten() { # N REP: open masters (timed as cm-open), ten commands per host over them (cm-ten)
    local n=$1 rep=$2 p=$1 dir=$WORK/cm/r$2.n$1
    ((p > MAX_P)) && p=$MAX_P
    mkdir -p "$dir"
    head -n "$n" "$HOSTS" | awk -v u="$USER_NAME" -v d="$dir" '{ print d "/" $3, "-p", $1, u "@" $2 }' >"$WORK/cm-in.txt"
    measure cm-open "$n" "$rep" 0 '^$' -- \
        xargs -a "$WORK/cm-in.txt" -P "$p" -L 1 ssh "${SSH_OPTS[@]}" -o ControlMaster=yes -o ControlPersist=yes -f -N -S
    local open
    open=$(find "$dir" -type s | wc -l)
    if ((open != n)); then log "  only $open of $n ControlMaster sockets are open"; fi
    measure cm-ten "$n" "$rep" $((n * 10)) '^ok$' -- \
        xargs -a "$WORK/cm-in.txt" -P "$p" -L 1 "$WORK/bin/ten-over-master"
    close_masters "$dir"
}
fabric_run() { # N REP one|ten
    local per=1
    [[ $3 == ten ]] && per=10
    measure "fabric-$3" "$1" "$2" $(($1 * per)) '^\[[0-9.]+:[0-9]+\] ok$' -- \
        "$VENV/bin/python" "$WORK/py/fab.py" "$1" "$3" "$HOSTS" "$KEY" "$KH" "$USER_NAME"
}
pyinfra_run() { # N REP one|ten
    local n=$1 rep=$2
    if [[ $3 == one ]]; then
        measure pyinfra-one "$n" "$rep" "$n" '^ +\[t[0-9]+\] Success$' -- \
            "$VENV/bin/pyinfra" -y --parallel "$n" "${PYINFRA_DATA[@]}" "$WORK/py/inv_n$n.py" exec -- echo ok
    else
        measure pyinfra-ten "$n" "$rep" $((n * 10)) '^ +\[t[0-9]+\] Success$' -- \
            "$VENV/bin/pyinfra" -y --parallel "$n" --no-wait "${PYINFRA_DATA[@]}" "$WORK/py/inv_n$n.py" "$WORK/py/ten.py"
    fi
}
ansible_run() { # N REP one|ten
    local n=$1 rep=$2 cp=$WORK/ansible/cp.n$1.r$2
    if [[ $3 == one ]]; then
        ANSIBLE_SSH_ARGS="-o ControlMaster=no $ANSIBLE_BASE_ARGS" \
            measure ansible-one "$n" "$rep" "$n" '\| rc=0 \| \(stdout\) ok' -- \
            "$VENV/bin/ansible" -i "$WORK/py/inv_n$n.ini" bench -m raw -a 'echo ok' -f "$n" -o
    else
        # A playbook of ten raw tasks over Ansible's usual ControlPersist connections, in a
        # folder of this run only; the masters are closed afterwards.
        mkdir -p "$cp"
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=60s $ANSIBLE_BASE_ARGS" \
            ANSIBLE_SSH_CONTROL_PATH_DIR=$cp \
            measure ansible-ten "$n" "$rep" "$n" 'ok=10 +changed=10 +unreachable=0 +failed=0' -- \
            "$VENV/bin/ansible-playbook" -i "$WORK/py/inv_n$n.ini" -f "$n" "$WORK/py/ten.yml"
        close_masters "$cp"
    fi
}

for n in "${NS[@]}"; do
    log "N=$n"
    tools=(rigs-one ssh-par rigs-ten cm)
    if ((n <= PY_MAX_N)); then
        for t in "${PY_TOOLS[@]}"; do tools+=("$t-one" "$t-ten"); done
    fi
    for ((rep = 1; rep <= RUNS; rep++)); do
        # Alternate the tools, starting each repetition at a different one.
        k=${#tools[@]}
        for ((j = 0; j < k; j++)); do
            t=${tools[(j + rep - 1) % k]}
            case $t in
            rigs-one) rigs_run "$n" "$rep" one ;;
            rigs-ten) rigs_run "$n" "$rep" ten ;;
            ssh-par) ssh_parallel "$n" "$rep" ;;
            cm) cm_ten "$n" "$rep" ;;
            fabric-*) fabric_run "$n" "$rep" "${t#*-}" ;;
            pyinfra-*) pyinfra_run "$n" "$rep" "${t#*-}" ;;
            ansible-*) ansible_run "$n" "$rep" "${t#*-}" ;;
            esac
        done
    done
done

# ------------------------------------------------------------------------- rigs --list, 50 tasks
LIST=$WORK/list50
mkdir -p "$LIST/recipes"
for f in 1 2 3 4 5; do
    for t in $(seq 1 10); do
        id=$(((f - 1) * 10 + t))
        printf '/// Task number %s: does a thing on every host.\n///\n' "$id"
        printf '/// Longer explanation of task %s, over a couple of lines, the way a\n' "$id"
        printf '/// real recipe documents its parameters.\n'
        printf 'fn task_%02d(name, count) {\n    for i in 0..count { run(`echo ${name} ${i}`); }\n}\n\n' "$id"
    done >"$LIST/recipes/part$f.rhai"
done
LIST_TIMES=()
LIST_OK=1
"$RIGS" -f "$LIST/recipes" --list >"$WORK/logs/list.out" 2>&1 || LIST_OK=0
[[ $(grep -c 'task_[0-9][0-9]' "$WORK/logs/list.out" || true) -eq 50 ]] || LIST_OK=0
if ((LIST_OK)); then
    wait_quiet
    for ((i = 0; i < LIST_RUNS; i++)); do
        t0=$EPOCHREALTIME
        "$RIGS" -f "$LIST/recipes" --list >/dev/null 2>&1
        t1=$EPOCHREALTIME
        LIST_TIMES+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
else
    log "rigs --list did not list 50 tasks: see $WORK/logs/list.out"
    FAILED_RUNS=$((FAILED_RUNS + 1))
fi
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
LIST_MEDIAN=$( ((${#LIST_TIMES[@]})) && printf '%s\n' "${LIST_TIMES[@]}" | median || true)

# --------------------------------------------------------------------------------------- report
# cm-total: opening the masters plus the ten commands, per repetition.
awk -F'\t' -v OFS='\t' '$2 == "cm-open" { o[$1 "/" $3] = $0 } $2 == "cm-ten" { t[$1 "/" $3] = $0 }
    END { for (k in t) if (k in o) { split(o[k], a, "\t"); split(t[k], b, "\t");
        print a[1], "cm-total", a[3], sprintf("%.3f", a[4] + b[4]), sprintf("%.2f", a[5] + b[5]),
              (a[6] > b[6] ? a[6] : b[6]), a[7] * b[7], a[8] + b[8], a[9] + b[9], (a[10] || b[10]) } }' \
    "$RESULTS_TSV" >"$WORK/cm-total.tsv"
cat "$WORK/cm-total.tsv" >>"$RESULTS_TSV"

cell() { # N TOOL COLUMN -> median of that column over the runs
    awk -F'\t' -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t { print $c }' "$RESULTS_TSV" | median
}
cellmax() { awk -F'\t' -v n="$1" -v t="$2" -v c="$3" 'BEGIN { m = "" } $1 == n && $2 == t { if (m == "" || $c + 0 > m) m = $c + 0 } END { print m }' "$RESULTS_TSV"; }
cellsum() { awk -F'\t' -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t { s += $c } END { print s + 0 }' "$RESULTS_TSV"; }
cellruns() { awk -F'\t' -v n="$1" -v t="$2" '$1 == n && $2 == t { k++ } END { print k + 0 }' "$RESULTS_TSV"; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }' || true; }

TABLE=$WORK/table.txt
{
    printf '%6s  %-12s %9s %15s %6s %7s %7s %5s %6s %8s\n' N tool 'median s' '(min - max)' ratio 'CPU s' 'RSS MB' 'ok' logins sessions
    for n in "${NS[@]}"; do
        for t in rigs-one ssh-par rigs-ten cm-open cm-ten cm-total fabric-one fabric-ten pyinfra-one pyinfra-ten ansible-one ansible-ten; do
            runs=$(cellruns "$n" "$t")
            ((runs)) || continue
            med=$(cell "$n" "$t" 4)
            mn=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $2 == t { print $4 }' "$RESULTS_TSV" | sort -g | head -n 1)
            mx=$(awk -F'\t' -v n="$n" -v t="$t" '$1 == n && $2 == t { print $4 }' "$RESULTS_TSV" | sort -g | tail -n 1)
            r=
            [[ $t == rigs-one ]] && r=$(ratio "$med" "$(cell "$n" ssh-par 4)")
            [[ $t == rigs-ten ]] && r=$(ratio "$med" "$(cell "$n" cm-ten 4)")
            rss=$(awk -v k="$(cellmax "$n" "$t" 6)" 'BEGIN { printf "%.1f", k / 1024 }')
            printf '%6s  %-12s %9.3f %15s %6s %7.2f %7s %5s %6s %8s\n' "$n" "$t" "$med" "($mn - $mx)" "${r:--}" \
                "$(cell "$n" "$t" 5)" "$rss" "$(cellsum "$n" "$t" 7)/$runs" "$(cell "$n" "$t" 8)" "$(cell "$n" "$t" 9)"
        done
    done
} >"$TABLE"

goal() { # description, verdict
    printf '  %-66s %s\n' "$1" "$2"
}
verdict_le() { # value limit -> PASS/FAIL (value)
    [[ -n $1 ]] || { echo "n/a (not measured)"; return; }
    awk -v v="$1" -v l="$2" 'BEGIN { print (v <= l ? "PASS" : "FAIL") }'
}
in_ns() { local x; for x in "${NS[@]}"; do [[ $x == "$1" ]] && return 0; done; return 1; }
GOALS=$WORK/goals.txt
{
    echo "Goals:"
    if in_ns 100; then
        r1=$(ratio "$(cell 100 rigs-one 4)" "$(cell 100 ssh-par 4)")
        goal "100 hosts, one command: rigs <= 1.0x parallel OpenSSH (is ${r1}x)" "$(verdict_le "$r1" 1.0)"
        r2=$(ratio "$(cell 100 rigs-ten 4)" "$(cell 100 cm-ten 4)")
        goal "100 hosts, ten commands: rigs <= 1.2x OpenSSH ControlMaster (is ${r2}x)" "$(verdict_le "$r2" 1.2)"
        m100=$(for t in rigs-one rigs-ten; do cellmax 100 "$t" 6; done | sort -g | tail -n 1)
        m100=$(awk -v k="$m100" 'BEGIN { printf "%.1f", k / 1024 }')
        goal "100 hosts: rigs peak RSS <= 64 MB (is $m100 MB)" "$(verdict_le "$m100" 64)"
    else
        goal "100-host goals" "n/a (100 not in the N list)"
    fi
    if in_ns 1000; then
        okr=$(( $(cellsum 1000 rigs-one 7) + $(cellsum 1000 rigs-ten 7) ))
        allr=$(( $(cellruns 1000 rigs-one) + $(cellruns 1000 rigs-ten) ))
        goal "1000 hosts: every rigs run succeeded on every host ($okr of $allr runs)" "$( ((okr == allr && allr > 0)) && echo PASS || echo FAIL)"
        m1000=$(for t in rigs-one rigs-ten; do cellmax 1000 "$t" 6; done | sort -g | tail -n 1)
        m1000=$(awk -v k="$m1000" 'BEGIN { printf "%.1f", k / 1024 }')
        goal "1000 hosts: rigs peak RSS <= 150 MB (is $m1000 MB)" "$(verdict_le "$m1000" 150)"
    else
        goal "1000-host goals" "n/a (1000 not in the N list)"
    fi
    em_tools=$(awk -F'\t' '$10 == 1 { print $2 " n=" $1 " run " $3 }' "$RESULTS_TSV" | sort -u | paste -sd, -)
    em_sshd=$(cat "$WORK"/sshd/d*/sshd.log | grep -ci 'too many open files' || true)
    goal "no \"too many open files\" (tools: ${em_tools:-none}; sshd logs: $em_sshd)" \
        "$([[ -z $em_tools && $em_sshd -eq 0 ]] && echo PASS || echo FAIL)"
    goal "rigs --list with 50 tasks <= 50 ms (median of $LIST_RUNS: ${LIST_MEDIAN:-?} ms)" "$(verdict_le "$LIST_MEDIAN" 50)"
} >"$GOALS"

DROPS=$(cat "$WORK"/sshd/d*/sshd.log | grep -c 'past MaxStartups' || true)
ELAPSED=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
{
    echo "rigs fan-out benchmark, $(date '+%Y-%m-%d %H:%M %Z')"
    echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), load at start $LOAD_START"
    echo "rigs: $RIGS_DESC"
    echo "OpenSSH: $(ssh -V 2>&1); key exchange $KEX, ed25519 keys; ${TOOL_VERSIONS:-no Python tools}"
    echo "targets: $MAXN (sshd x $DAEMONS, $PER_DAEMON listeners each, $PORTS_PER_ADDR port(s) per address), user $USER_NAME, runs per cell: $RUNS, open-file limit $(ulimit -n)"
    echo
    cat "$TABLE"
    echo
    echo "median s: wall seconds, median of the runs. ratio: rigs-one / ssh-par, rigs-ten / cm-ten."
    echo "CPU s: user+sys of the controller side, median (for xargs/ssh and Ansible the sum over all"
    echo "their processes). RSS MB: peak resident set of the largest single process, max over runs."
    echo "ok: runs that exited 0 with every host's output present. logins: sshd 'Accepted publickey'"
    echo "lines during a run, sessions: 'Starting session' lines (medians). cm-total = cm-open + cm-ten."
    [[ -n $PY_NOTE ]] && echo "$PY_NOTE"
    if ((${#PY_TOOLS[@]} && MAXN > PY_MAX_N)); then echo "Python tools run only for N <= $PY_MAX_N (PY_MAX_N)."; fi
    echo "sshd 'past MaxStartups' drops over the whole benchmark: $DROPS"
    echo
    cat "$GOALS"
    echo
    echo "failed runs: $FAILED_RUNS; benchmark wall time: ${ELAPSED} s"
} >"$WORK/report.txt"
cp "$WORK/report.txt" "$RESULTS"
cat "$WORK/report.txt"
((FAILED_RUNS == 0)) || log "$FAILED_RUNS run(s) failed; logs kept under $WORK/logs"
