#!/usr/bin/env bash
# Builds patchbay's container image from the Dockerfile as it is and proves it on this machine:
# it starts, gets ready behind the published port, reports healthy, runs as non-root, logs a
# state change, stops cleanly on SIGTERM within 10 s with an intact database, and a second
# container on the same volume still has the history. Then it checks compose.yaml with the
# compose tools Debian packages, and prints a short report.
#
# Usage, as root on Debian bookworm with a Rust toolchain (rustc on PATH). From cold it makes the
# build image (about a minute) and a full release build (about 6 minutes on 2 cores); with the
# dependency layer cached, under 2 minutes in all:
#
#     scripts/container-smoke.sh              # everything
#     scripts/container-smoke.sh --base-only  # only make (or reuse) the local build image
#
# No registry is needed. The Dockerfile's build stage defaults to the official Rust image; here
# it is replaced, with --build-arg only, by a local one: Debian bookworm from debootstrap (the
# mirror apt uses) with this machine's Rust toolchain copied in. The runtime stage is `scratch`,
# which needs no image. Crates come from crates.io during the build, as usual. The build image
# is kept and reused by the next run (`podman rmi` it to make it anew); containers, volumes and
# temporary files are removed, and the built image stays as localhost/patchbay:smoke.
#
# Podman quirks of these machines, set once in a containers.conf of this run's own: the runc
# runtime (crun fails on hybrid cgroups), ulimits at the hard limits the sandbox allows, and
# `--format docker` on the build so HEALTHCHECK is kept. Nothing runs healthchecks on a timer
# here (no systemd), so the script runs `podman healthcheck run` itself.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

image=localhost/patchbay:smoke
prefix=patchbay-smoke
volume=$prefix-data
suite=bookworm

say() { printf '==> %s\n' "$*" >&2; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || fail "run as root (podman builds and runs rootful here)"

# --- What it needs -------------------------------------------------------------------------

need=()
for pair in podman:podman buildah:buildah debootstrap:debootstrap runc:runc \
    podman-compose:podman-compose docker-compose:docker-compose sqlite3:sqlite3 \
    curl:curl python3:python3; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" uidmap >/dev/null
fi

work=$(mktemp -d /var/tmp/$prefix.XXXXXX)
upstream_pid=
cleanup() {
    podman rm -f -t 0 "$prefix-1" "$prefix-2" >/dev/null 2>&1 || true
    if [ -f "$work/compose/compose.yaml" ]; then
        (cd "$work/compose" && podman-compose -p "$prefix" down -v >/dev/null 2>&1) || true
    fi
    podman volume rm -f "$volume" >/dev/null 2>&1 || true
    podman untag "$image" localhost/patchbay:latest >/dev/null 2>&1 || true
    [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# A run stopped half-way leaves its containers and volume: remove them first.
podman rm -f -t 0 "$prefix-1" "$prefix-2" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true

# Podman lowers its own process limit to 32768 before it starts a container, so no container can
# be given more than that (runc fails with "error setting rlimit type 6").
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf

# --- The local build image ----------------------------------------------------------------

# Debian's mirror as apt on this machine names it (deb822 or one-line sources).
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}

sysroot=$(rustc --print sysroot)
rust_version=$(rustc --version | awk '{ print $2 }')
rust_image=localhost/patchbay-rust:$rust_version-$suite

if podman image exists "$rust_image"; then
    say "reusing $rust_image"
else
    say "making $rust_image: debootstrap $suite from $mirror, then Rust $rust_version from $sysroot"
    rootfs=$work/rootfs
    # What the official rust:*-bookworm image offers the build: a C compiler and libc headers
    # (ring and the bundled SQLite are C), CA certificates (cargo's HTTPS), zlib (rustc).
    debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev,zlib1g \
        "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -n 20 "$work/debootstrap.log" >&2
        fail "debootstrap failed"
    }
    mkdir -p "$rootfs/usr/local/rust/bin" "$rootfs/usr/local/cargo"
    cp -a "$sysroot"/bin/{cargo,rustc,rustdoc} "$rootfs/usr/local/rust/bin/"
    cp -a "$sysroot/lib" "$rootfs/usr/local/rust/"
    # cargo trusts what this host trusts: a host behind a TLS-inspecting proxy reaches crates.io
    # only with the proxy's CA. Given to cargo alone, so the image's own CA bundle, which the
    # Dockerfile copies into the runtime image, stays Debian's.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/host-ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV CARGO_HTTP_CAINFO=/usr/local/share/host-ca-certificates.crt' \
        --change 'CMD ["/bin/bash"]' \
        - "$rust_image" >/dev/null
    rm -rf "$rootfs"
fi
podman run --rm "$rust_image" cargo --version >/dev/null || fail "$rust_image has no working cargo"

if [ "${1:-}" = --base-only ]; then
    say "build image ready: $rust_image"
    exit 0
fi

# --- Build ---------------------------------------------------------------------------------

say "building $image from the Dockerfile (--build-arg RUST_IMAGE=$rust_image)"
build_start=$(now)
podman build --format docker --build-arg "RUST_IMAGE=$rust_image" -t "$image" . \
    >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    fail "the image did not build"
}
build_time=$(since "$build_start")
steps=$(grep -c '^\[[0-9]/[0-9]\] STEP' "$work/build.log" || true)
cached=$(grep -c '^--> Using cache' "$work/build.log" || true)

size_bytes=$(podman image inspect -f '{{.Size}}' "$image")
mount=$(podman image mount "$image")
binary_bytes=$(stat -c %s "$mount/usr/local/bin/patchbay")
files=$(cd "$mount" && find . -type f | sort | tr '\n' ' ')
podman image umount "$image" >/dev/null

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
label=$(podman image inspect -f '{{index .Labels "org.opencontainers.image.version"}}' "$image")
[ "$label" = "$version" ] || fail "label org.opencontainers.image.version is $label, Cargo.toml says $version"
user=$(podman image inspect -f '{{.Config.User}}' "$image")
healthcheck=$(podman image inspect -f '{{.HealthCheck.Test}}' "$image")
[ -n "$healthcheck" ] && [ "$healthcheck" != "[]" ] || fail "the image has no HEALTHCHECK"

# --- An upstream whose answer the script flips ---------------------------------------------

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
upstream_port=$(free_port)
http_port=$(free_port)
echo 200 >"$work/upstream-status"
cat >"$work/upstream.py" <<'EOF'
import http.server, sys
status_file = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = int(open(status_file).read())
        body = b"ok\n" if status == 200 else b"failing\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
EOF
python3 "$work/upstream.py" "$upstream_port" "$work/upstream-status" &
upstream_pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$upstream_port/"; do sleep 0.1; done

mkdir -p "$work/config"
cat >"$work/config/patchbay.toml" <<EOF
# The smoke test's config: one HTTP integration against the script's upstream on the host.
[scheduler]
shutdown_timeout = "5s"

[[integration]]
name = "smoke-upstream"
kind = "http"
url = "http://host.containers.internal:$upstream_port/health"
conditions = ["status == 200"]
interval = "1s"
timeout = "1s"
failure_threshold = 1
success_threshold = 1
EOF

# --- First container -----------------------------------------------------------------------

# Without systemd, podman run says it cannot start the healthcheck timer (an error it goes on
# from); that goes to a file, and the script runs the healthcheck itself.
start_container() {
    podman run -d --name "$1" -p "127.0.0.1:$http_port:8080" -v "$volume:/data" \
        -v "$work/config:/config:ro" "$image" >/dev/null 2>"$work/$1.run.log" || {
        cat "$work/$1.run.log" >&2
        fail "podman run $1 failed"
    }
}
wait_ready() {
    local deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$http_port/readyz" >"$work/readyz" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || {
            podman logs "$1" >&2
            fail "$1 was not ready within 60 s"
        }
        sleep 0.1
    done
}
# A container's log so far, in a file: `podman logs | grep -q` would end podman with SIGPIPE,
# which pipefail turns into a failure.
logs() {
    podman logs "$1" >"$work/$1.log" 2>&1
    echo "$work/$1.log"
}
wait_log() {
    local deadline=$((SECONDS + 30))
    until grep -q -- "$2" "$(logs "$1")"; do
        [ $SECONDS -lt $deadline ] || {
            podman logs "$1" >&2
            fail "$1 did not log \"$2\" within 30 s"
        }
        sleep 0.2
    done
}
stop_container() {
    local start code
    start=$(now)
    podman stop -t 10 "$1" >/dev/null 2>>"$work/podman.log"
    stop_time=$(since "$start")
    code=$(podman inspect -f '{{.State.ExitCode}}' "$1")
    [ "$code" = 0 ] || {
        podman logs "$1" >&2
        fail "$1 exited with $code after SIGTERM (137 is SIGKILL: it did not stop within 10 s)"
    }
    awk -v t="$stop_time" 'BEGIN { exit !(t < 10) }' || fail "$1 took $stop_time s to stop"
    grep -q 'SIGTERM received' "$(logs "$1")" || fail "$1 never logged the SIGTERM"
    grep -q 'patchbay stopped' "$(logs "$1")" || fail "$1 did not finish its shutdown"
}

say "starting $prefix-1 (port 127.0.0.1:$http_port, upstream on :$upstream_port)"
run_start=$(now)
start_container "$prefix-1"
wait_ready "$prefix-1"
ready_time=$(since "$run_start")
readyz=$(cat "$work/readyz")

podman healthcheck run "$prefix-1" >/dev/null || fail "podman healthcheck run did not report healthy"
health=$(podman inspect -f '{{.State.Healthcheck.Status}}' "$prefix-1")
[ "$health" = healthy ] || fail "health status is $health"

pid=$(podman inspect -f '{{.State.Pid}}' "$prefix-1")
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
for uid in $uids; do [ "$uid" != 0 ] || fail "the process runs as root (Uid: $uids)"; done
pid_in_container=$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")

wait_log "$prefix-1" 'integration=smoke-upstream from=UNKNOWN to=UP'
echo 503 >"$work/upstream-status"
wait_log "$prefix-1" 'integration=smoke-upstream from=UP to=DOWN'
change=$(grep -m 1 'from=UP to=DOWN' "$(logs "$prefix-1")" | sed 's/\x1b\[[0-9;]*m//g')
since_down=$(podman exec "$prefix-1" /usr/local/bin/patchbay status --json |
    python3 -c 'import json, sys; print([i["since"] for i in json.load(sys.stdin) if i["name"] == "smoke-upstream"][0])')

# A backup as README shows it: written by the running container, copied out.
podman exec "$prefix-1" /usr/local/bin/patchbay backup /tmp/backup.db >/dev/null
podman cp "$prefix-1:/tmp/backup.db" "$work/backup.db"
backup_check=$(sqlite3 "$work/backup.db" 'PRAGMA integrity_check')
[ "$backup_check" = ok ] || fail "the backup's integrity_check says: $backup_check"

say "stopping $prefix-1 with SIGTERM"
stop_container "$prefix-1"
stop_time_1=$stop_time

# The database on the volume, checked on a copy so nothing here touches the volume's files.
data=$(podman volume inspect -f '{{.Mountpoint}}' "$volume")
leftover=$(cd "$data" && ls -A | tr '\n' ' ')
mkdir "$work/copy"
cp "$data"/patchbay.db* "$work/copy/"
integrity=$(sqlite3 "$work/copy/patchbay.db" 'PRAGMA integrity_check')
[ "$integrity" = ok ] || fail "integrity_check says: $integrity"
transitions=$(sqlite3 "$work/copy/patchbay.db" 'SELECT count(*) FROM transitions')
[ "$transitions" -ge 2 ] || fail "only $transitions transitions were stored"
owner=$(stat -c %u:%g "$data/patchbay.db")

# --- Second container on the same volume ---------------------------------------------------

say "starting $prefix-2 on the same volume"
start_container "$prefix-2"
wait_ready "$prefix-2"
since_again=$(podman exec "$prefix-2" /usr/local/bin/patchbay status --json |
    python3 -c 'import json, sys; print([i["since"] for i in json.load(sys.stdin) if i["name"] == "smoke-upstream"][0])')
[ "$since_again" = "$since_down" ] ||
    fail "the second container says DOWN since $since_again, the first said $since_down"
echo 200 >"$work/upstream-status"
# The state was read back: the recovery is from DOWN, not a first check from UNKNOWN.
wait_log "$prefix-2" 'integration=smoke-upstream from=DOWN to=UP'
if grep -q 'from=UNKNOWN' "$(logs "$prefix-2")"; then
    fail "the second container started from UNKNOWN: the history was lost"
fi
stop_container "$prefix-2"
stop_time_2=$stop_time
podman rm "$prefix-1" "$prefix-2" >/dev/null 2>>"$work/podman.log"

# --- compose.yaml -----------------------------------------------------------------------------

# In a copy beside a .env made from .env.example and the smoke config, so a developer's own .env
# and config are never read or written. docker-compose validates the file (it needs no daemon
# for that); podman-compose, which has no `config`, runs it: up with the image just built, ready
# on the file's port, healthy, down with its volume.
mkdir -p "$work/compose/config"
cp compose.yaml "$work/compose/"
cp .env.example "$work/compose/.env"
cp "$work/config/patchbay.toml" "$work/compose/config/"
cd "$work/compose"
docker-compose -f compose.yaml config -q 2>"$work/dc.log" || {
    cat "$work/dc.log" >&2
    fail "docker-compose config refused compose.yaml"
}
compose_port=$(sed -n 's/^ *- "127.0.0.1:\([0-9]*\):8080"$/\1/p' compose.yaml)
compose_image=$(sed -n 's/^ *image: *//p' compose.yaml)
if ss -Hltn "sport = :$compose_port" | grep -q .; then
    compose_run="not run: port $compose_port is taken on this host"
elif podman image exists "localhost/$compose_image"; then
    compose_run="not run: an image localhost/$compose_image exists already and is left alone"
else
    podman tag "$image" "localhost/$compose_image"
    podman-compose -p "$prefix" -f compose.yaml up -d --no-build >"$work/pc.log" 2>&1 || {
        cat "$work/pc.log" >&2
        fail "podman-compose up failed"
    }
    compose_container=$(podman ps --filter "label=io.podman.compose.project=$prefix" --format '{{.Names}}' | head -n 1)
    [ -n "$compose_container" ] || fail "podman-compose started no container"
    http_port=$compose_port wait_ready "$compose_container"
    podman healthcheck run "$compose_container" >/dev/null ||
        fail "the compose service is not healthy"
    stop_container "$compose_container"
    podman-compose -p "$prefix" -f compose.yaml down -v >>"$work/pc.log" 2>&1
    podman untag "$image" "localhost/$compose_image"
    compose_run="podman-compose up: ready on 127.0.0.1:$compose_port, healthy, stopped in ${stop_time} s, down"
fi
cd "$repo"

# --- Report --------------------------------------------------------------------------------

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB (%.1f MiB)", b / 1e6, b / 1048576 }'; }
cat <<EOF

patchbay container smoke test: passed
  image            $image ($(mb "$size_bytes")), user $user, version label $label
  binary           $(mb "$binary_bytes")
  files            $files
  build            ${build_time} s (build image $rust_image; $cached of $steps steps from the layer cache)
  ready            ${ready_time} s from podman run to 200 on /readyz through 127.0.0.1:$http_port: $readyz
  healthcheck      podman healthcheck run: $health
  process          PID $pid_in_container in the container, uids $uids
  state change     $change
  stop (SIGTERM)   ${stop_time_1} s, exit 0; then ${stop_time_2} s for the second container
  database         $owner on the volume; integrity_check: $integrity; $transitions transitions; files after stop: $leftover
  history          second container: smoke-upstream DOWN since $since_again (as before), then DOWN -> UP
  backup           patchbay backup in the running container, copied out: integrity_check $backup_check
  compose.yaml     docker-compose config: ok; $compose_run
EOF
