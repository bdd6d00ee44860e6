#!/usr/bin/env bash
# Installs a Waterflow agent on a plain Linux host (systemd): a system user, a virtualenv with
# the agent and node packages, /etc/waterflow/agent.env (mode 0600) and waterflow-agent.service.
# Running it again with the same options changes nothing; with other options it updates what
# differs and keeps the lines of agent.env it does not manage (TLS settings, secrets).
# Run `install-agent.sh --help` for the options; deploy/README.md explains them.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install-agent.sh --name NAME [--group GROUP]... [options]

Where the packages come from (one of):
  --wheels DIR               Waterflow wheels made by deploy/build-wheels (installed by file)
  --version VERSION          install waterflow-agent==VERSION etc. by name from the index
  --index-url URL            the index for third-party packages (and Waterflow's with --version)
  --no-index                 nothing from an index: DIR must hold every dependency too

The agent:
  --name NAME                unique agent name (default: this host's short name)
  --group GROUP              server group to serve; repeatable
  --temporal-address H:P     Temporal frontend (default 127.0.0.1:7233)
  --namespace NS             Temporal namespace (default "default")
  --node NAME                node package to install: shell, http, file, docker; repeatable
                             (default: shell http file)
  --run-as USER              start steps' processes as USER; the agent then runs as root
  --user USER                system user the agent runs as (default waterflow; created if missing)
  --supplementary-group G    extra group of the agent's user (e.g. docker); repeatable
  --read-write PATH          a path steps may write besides the workdir; repeatable
  --unconfined               no sandbox in the unit (the agent administers the host: sudo,
                             writes under /etc, ...)

Where:
  --prefix DIR               virtualenv (default /opt/waterflow-agent)
  --workdir DIR              agent workdir (default /var/lib/waterflow/agent)
  --python PATH              Python 3.11+ used to create the virtualenv (default python3)
  --root DIR                 install into DIR as the root of the file system (implies --no-start)
  --no-start                 write everything but do not run systemctl
EOF
}

die() { echo "install-agent.sh: $*" >&2; exit 2; }
say() { echo "install-agent.sh: $*"; }

# Every value that reaches agent.env or the unit matches one of these: no whitespace, quotes,
# `$`, `%` (systemd specifiers), `\`, `;` or newlines, so neither file can be given another line
# or another meaning.
NAME_RE='^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$'
GROUP_RE='^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$'
ADDRESS_RE='^([A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$'
USER_RE='^[a-z_][a-z0-9_-]{0,31}$'
PATH_RE='^/[A-Za-z0-9._/@+-]{0,4095}$'
VERSION_RE='^[0-9][0-9A-Za-z.+!-]{0,63}$'

check() {  # check OPTION VALUE REGEX WHAT
  [[ $2 =~ $3 ]] || die "$1: invalid value $(printf '%q' "$2") ($4)"
}
check_path() {
  check "$1" "$2" "$PATH_RE" "an absolute path of letters, digits and ._/@+-"
  [[ /$2/ != */../* && /$2/ != */./* ]] || die "$1: $(printf '%q' "$2") must not contain . or .. components"
}

name="" groups=() address="127.0.0.1:7233" namespace="default" nodes=() run_as="" user="waterflow"
supplementary=() read_write=() unconfined=0 prefix="/opt/waterflow-agent"
workdir="/var/lib/waterflow/agent" python="python3" root="" start=1 wheels="" version=""
index_url="" no_index=0

need() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --name) need "$@"; name="$2"; shift 2 ;;
    --group) need "$@"; groups+=("$2"); shift 2 ;;
    --temporal-address) need "$@"; address="$2"; shift 2 ;;
    --namespace) need "$@"; namespace="$2"; shift 2 ;;
    --node) need "$@"; nodes+=("$2"); shift 2 ;;
    --run-as) need "$@"; run_as="$2"; shift 2 ;;
    --user) need "$@"; user="$2"; shift 2 ;;
    --supplementary-group) need "$@"; supplementary+=("$2"); shift 2 ;;
    --read-write) need "$@"; read_write+=("$2"); shift 2 ;;
    --unconfined) unconfined=1; shift ;;
    --prefix) need "$@"; prefix="$2"; shift 2 ;;
    --workdir) need "$@"; workdir="$2"; shift 2 ;;
    --python) need "$@"; python="$2"; shift 2 ;;
    --root) need "$@"; root="$2"; start=0; shift 2 ;;
    --no-start) start=0; shift ;;
    --wheels) need "$@"; wheels="$2"; shift 2 ;;
    --version) need "$@"; version="$2"; shift 2 ;;
    --index-url) need "$@"; index_url="$2"; shift 2 ;;
    --no-index) no_index=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $(printf '%q' "$1")" ;;
  esac
done

[ -n "$name" ] || name="$(hostname -s 2>/dev/null || hostname)"
check --name "$name" "$NAME_RE" "letters, digits and ._@- only, at most 100"
for group in ${groups[@]+"${groups[@]}"}; do
  check --group "$group" "$GROUP_RE" "letters, digits and ._@- only, at most 100"
done
check --temporal-address "$address" "$ADDRESS_RE" "HOST:PORT"
check --namespace "$namespace" "$GROUP_RE" "letters, digits and ._@- only"
check --user "$user" "$USER_RE" "a user name"
[ -z "$run_as" ] || check --run-as "$run_as" '^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$' "a user name or uid"
for group in ${supplementary[@]+"${supplementary[@]}"}; do
  check --supplementary-group "$group" "$USER_RE" "a group name"
done
check_path --prefix "$prefix"
check_path --workdir "$workdir"
for path in ${read_write[@]+"${read_write[@]}"}; do check_path --read-write "$path"; done
[ "${#nodes[@]}" -gt 0 ] || nodes=(shell http file)
for node in "${nodes[@]}"; do
  case "$node" in shell|http|file|docker) ;; *) die "--node: unknown node package $(printf '%q' "$node") (shell, http, file, docker)" ;; esac
done
if [ -n "$wheels" ]; then
  [ -z "$version" ] || die "--wheels and --version exclude each other"
  [ -d "$wheels" ] || die "--wheels: $(printf '%q' "$wheels") is not a directory"
  wheels="$(cd "$wheels" && pwd)"
else
  [ -n "$version" ] || die "say where the packages come from: --wheels DIR or --version VERSION"
  check --version "$version" "$VERSION_RE" "a version such as 0.1.0"
  [ "$no_index" -eq 0 ] || die "--no-index needs --wheels"
fi
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root: $(printf '%q' "$root") is not a directory"
  root="$(cd "$root" && pwd)"
  [ "$root" != "/" ] || root=""
fi
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a user and writes under /etc)"
if [ -n "$run_as" ] && [ "$user" != "waterflow" ] && [ "$user" != "root" ]; then
  die "--run-as makes the agent run as root: leave --user out"
fi
[ -z "$run_as" ] || user="root"

# --- the system user ---------------------------------------------------------------------------
passwd_file="$root/etc/passwd"
user_exists() { [ -f "$passwd_file" ] && grep -q "^$user:" "$passwd_file"; }
if [ "$user" != "root" ]; then
  if user_exists; then
    say "user $user exists"
  else
    mkdir -p "$root/etc"
    prefix_option=()
    [ -z "$root" ] || prefix_option=(--prefix "$root")
    useradd ${prefix_option[@]+"${prefix_option[@]}"} --system --user-group \
      --home-dir "$(dirname "$workdir")" --no-create-home --shell /usr/sbin/nologin "$user"
    say "created system user $user"
  fi
fi
uid_gid() {  # numeric uid:gid from the root's own user database (not the host's, with --root)
  awk -F: -v u="$1" '$1 == u { print $3 ":" $4; found = 1 } END { exit !found }' "$passwd_file"
}
if [ "$user" = "root" ]; then owner="0:0"; else owner="$(uid_gid "$user")"; fi

# --- the virtualenv ----------------------------------------------------------------------------
venv="$root$prefix"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || die "cannot create a virtualenv with $python (Debian/Ubuntu: apt-get install python3-venv)"
  say "created virtualenv $prefix"
fi
distributions=(waterflow-core waterflow-sdk waterflow-agent)
for node in "${nodes[@]}"; do distributions+=("waterflow-node-$node"); done
requirements=()
if [ -n "$wheels" ]; then
  # By file, never by name from an index: a same-named package elsewhere cannot replace them.
  for distribution in "${distributions[@]}"; do
    matches=("$wheels/${distribution//-/_}"-*.whl)
    [ -f "${matches[0]}" ] || die "--wheels: no ${distribution//-/_}-*.whl in $wheels (deploy/build-wheels makes them)"
    [ "${#matches[@]}" -eq 1 ] || die "--wheels: more than one ${distribution//-/_} wheel in $wheels"
    requirements+=("${matches[0]}")
  done
else
  for distribution in "${distributions[@]}"; do requirements+=("$distribution==$version"); done
fi
pip_options=(--quiet --disable-pip-version-check --upgrade)
[ -z "$wheels" ] || pip_options+=(--find-links "$wheels")
[ -z "$index_url" ] || pip_options+=(--index-url "$index_url")
[ "$no_index" -eq 0 ] || pip_options+=(--no-index)
installed_before="$("$venv/bin/python" -m pip freeze --all 2>/dev/null || true)"
"$venv/bin/python" -m pip install "${pip_options[@]}" "${requirements[@]}"
installed_after="$("$venv/bin/python" -m pip freeze --all 2>/dev/null || true)"
changed=0
if [ "$installed_before" != "$installed_after" ]; then changed=1; say "installed ${distributions[*]}"; fi

# --- the workdir -------------------------------------------------------------------------------
if [ -n "$run_as" ]; then
  # The agent (root) owns it; steps work in <workdir>/steps, which the agent gives the step user,
  # who must be able to pass through.
  install -d -m 0711 -o 0 -g 0 "$root$workdir"
else
  install -d -m 0700 -o "${owner%:*}" -g "${owner#*:}" "$root$workdir"
fi

# --- files: written only when their content changes -------------------------------------------
write_file() {  # write_file PATH MODE < content
  local target="$1" mode="$2" tmp
  mkdir -p "$(dirname "$target")"
  tmp="$(mktemp "$target.XXXXXX")"
  cat > "$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$target" ] && cmp -s "$tmp" "$target"; then
    rm -f "$tmp"
    chmod "$mode" "$target"
    say "unchanged ${target#"$root"}"
  else
    mv -f "$tmp" "$target"
    changed=1
    say "wrote ${target#"$root"}"
  fi
}

install -d -m 0700 -o 0 -g 0 "$root/etc/waterflow"
env_path="/etc/waterflow/agent.env"
env_file="$root$env_path"
BEGIN_MARK="# BEGIN install-agent.sh: rewritten by every run; your settings go below END"
END_MARK="# END install-agent.sh"
env_content() {
  echo "$BEGIN_MARK"
  echo "WATERFLOW_AGENT_NAME=$name"
  echo "WATERFLOW_AGENT_GROUPS=\"${groups[*]+"${groups[*]}"}\""
  echo "WATERFLOW_TEMPORAL_ADDRESS=$address"
  echo "WATERFLOW_TEMPORAL_NAMESPACE=$namespace"
  echo "WATERFLOW_AGENT_WORKDIR=$workdir"
  [ -z "$run_as" ] || echo "WATERFLOW_AGENT_RUN_AS=$run_as"
  echo "$END_MARK"
  if [ -f "$env_file" ]; then
    awk -v begin="$BEGIN_MARK" -v end="$END_MARK" '
      $0 == begin { skip = 1; next }
      $0 == end { skip = 0; next }
      !skip' "$env_file"
  else
    cat <<'EOF'
# Settings of your own (kept by later runs of install-agent.sh), for example:
# WATERFLOW_TEMPORAL_TLS_CA=/etc/waterflow/temporal-ca.pem
# WATERFLOW_TEMPORAL_TLS_CERT=/etc/waterflow/agent.pem
# WATERFLOW_TEMPORAL_TLS_KEY=/etc/waterflow/agent-key.pem
# WATERFLOW_TEMPORAL_API_KEY=...
# WATERFLOW_SECRET_DB_PASSWORD=...      (secrets.DB_PASSWORD in workflows)
# WATERFLOW_AGENT_MAX_CONCURRENT=10
EOF
  fi
}
write_file "$env_file" 0600 < <(env_content)

unit_file="$root/etc/systemd/system/waterflow-agent.service"
unit_content() {
  cat <<EOF
# Written by install-agent.sh: re-run it to change this file; put local changes in
# /etc/systemd/system/waterflow-agent.service.d/*.conf.
[Unit]
Description=Waterflow agent $name
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=$user
EOF
  [ "$user" = "root" ] || echo "Group=$user"
  [ "${#supplementary[@]}" -eq 0 ] || echo "SupplementaryGroups=${supplementary[*]}"
  cat <<EOF
EnvironmentFile=$env_path
# -P: the working directory, which steps write, is never importable.
ExecStart=$prefix/bin/python -P -m waterflow_agent
WorkingDirectory=$workdir
Restart=always
RestartSec=5s
# SIGTERM reaches the agent alone: it lets running steps finish for --grace (30 s), then cancels
# them; what is left of the unit's processes is killed when TimeoutStopSec runs out.
KillMode=mixed
TimeoutStopSec=60s
UMask=0077
EOF
  if [ "$unconfined" -eq 0 ]; then
    cat <<EOF
NoNewPrivileges=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native
ProtectSystem=strict
ReadWritePaths=$workdir${read_write[*]+" ${read_write[*]}"}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
EOF
    if [ -n "$run_as" ]; then
      # Root, but only for what --run-as needs: switch to the step user, give it its files,
      # signal its processes.
      echo "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_KILL"
    elif [ "$user" != "root" ]; then
      echo "CapabilityBoundingSet="
    fi
  fi
  cat <<'EOF'

[Install]
WantedBy=multi-user.target
EOF
}
write_file "$unit_file" 0644 < <(unit_content)

if [ "$start" -eq 1 ]; then
  systemctl daemon-reload
  systemctl enable waterflow-agent.service
  if [ "$changed" -eq 1 ]; then
    systemctl restart waterflow-agent.service
    say "restarted waterflow-agent.service"
  else
    systemctl start waterflow-agent.service
  fi
else
  say "not started (--no-start or --root): systemctl daemon-reload && systemctl enable --now waterflow-agent.service"
fi
