#!/usr/bin/env bash
# Package test: builds the .deb and the .rpm with scripts/package, checks what they contain,
# then installs, runs, upgrades, removes and purges the .deb on this machine. Runs as root on
# a Debian machine (scripts/test calls it after the nextest run). systemd need not be PID 1:
# the node is started the way the unit starts it (same user, same command line).
#
# It leaves the machine as it found it: the node it started is stopped, the package purged,
# its test log file removed, and the lograft user and group deleted if it created them.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "tests/package: $*"; }
fail() {
  echo "tests/package: FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: the test installs and purges the lograft package"
for tool in dpkg-deb dpkg apt-get rpm runuser curl python3 systemd-analyze; do
  command -v "$tool" >/dev/null 2>&1 ||
    fail "$tool is missing (scripts/test installs rpm and systemd when they are missing)"
done

CONFIG=/etc/lograft/lograft.toml
DATA=/var/lib/lograft
URL=http://127.0.0.1:7700
TEST_LOG=/var/log/lograft-pkgtest.log
# The unit's ExecStart, word for word.
EXEC_START=(/usr/bin/lograft serve --config "$CONFIG")
UNIT_DIR=/lib/systemd/system # /usr/lib/systemd/system, through Debian's merged /usr

# The package is installed, or its config files are (not-installed or unknown: no).
package_known() {
  dpkg-query -W -f='${db:Status-Status}' lograft 2>/dev/null | grep -qvx 'not-installed'
}
if package_known; then
  fail "lograft is already installed here; purge it first (dpkg --purge lograft)"
fi
[ -e "$DATA" ] && fail "$DATA exists but lograft is not installed: move it away first"
[ -e /etc/lograft ] && fail "/etc/lograft exists but lograft is not installed: move it away first"
if (exec 3<>/dev/tcp/127.0.0.1/7700) 2>/dev/null; then
  fail "something already listens on 127.0.0.1:7700 (the packaged config's listen address); stop it first"
fi

user_existed=0
getent passwd lograft >/dev/null && user_existed=1
group_existed=0
getent group lograft >/dev/null && group_existed=1
work="$(mktemp -d /tmp/lograft-pkgtest.XXXXXX)"
chmod 0755 "$work"
node_pid="" runuser_pid=""

cleanup() {
  local status=$?
  set +e
  stop_node quiet
  if [ "$status" != 0 ] && [ -f "$work/node.log" ]; then
    echo "tests/package: the node's last log lines ($work/node.log):" >&2
    tail -n 40 "$work/node.log" >&2
  fi
  if package_known; then
    dpkg --purge lograft >/dev/null 2>&1
  fi
  rm -f "$TEST_LOG"
  if [ "$user_existed" = 0 ] && getent passwd lograft >/dev/null; then
    deluser --system lograft >/dev/null 2>&1 || userdel lograft
  fi
  if [ "$group_existed" = 0 ] && getent group lograft >/dev/null; then
    delgroup --system lograft >/dev/null 2>&1 || groupdel lograft
  fi
  rm -rf "$work"
  if [ "$status" = 0 ]; then
    echo "tests/package: 1 passed, 0 failed"
  else
    echo "tests/package: 0 passed, 1 failed"
  fi
  exit "$status"
}
trap cleanup EXIT

# --- helpers -----------------------------------------------------------------------------

# The unit sets MemoryDenyWriteExecute=true. Without systemd as PID 1 the test gets the same
# from the kernel (prctl PR_SET_MDWE, Linux >= 6.3; inherited across exec): a node that maps
# writable+executable memory fails here as it would under the unit.
cat >"$work/mdwe.py" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit("PR_SET_MDWE: errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
EOF
mdwe=()
if python3 "$work/mdwe.py" /bin/true 2>/dev/null; then
  mdwe=(python3 "$work/mdwe.py")
else
  say "this kernel has no PR_SET_MDWE: MemoryDenyWriteExecute is not exercised"
fi

start_node() {
  if (exec 3<>/dev/tcp/127.0.0.1/7700) 2>/dev/null; then
    fail "something listens on 127.0.0.1:7700 before the node starts"
  fi
  # As the unit runs it: user lograft (with its group adm), NO_COLOR, the ExecStartPre check.
  # (The working directory is / as under systemd.)
  (cd / && runuser -u lograft -- env NO_COLOR=1 /usr/bin/lograft config check "$CONFIG") >/dev/null ||
    fail "the unit's ExecStartPre (lograft config check $CONFIG) fails as user lograft"
  (cd / && exec runuser -u lograft -- env NO_COLOR=1 "${mdwe[@]}" "${EXEC_START[@]}") >>"$work/node.log" 2>&1 &
  runuser_pid=$!
  local _
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$URL/health" 2>/dev/null; then
      break
    fi
    kill -0 "$runuser_pid" 2>/dev/null || fail "the node exited during startup (log above)"
    sleep 0.5
  done
  curl -fsS -o /dev/null "$URL/health" || fail "no /health on $URL within 60 s"
  # runuser forks the command (and forwards signals); the node is its child.
  node_pid=""
  local stat fields
  for stat in /proc/[0-9]*/stat; do
    fields="$(cat "$stat" 2>/dev/null)" || continue
    fields="${fields##*) }" # after "pid (comm) ": state ppid ...
    if [ "$(cut -d' ' -f2 <<<"$fields")" = "$runuser_pid" ]; then
      node_pid="${stat#/proc/}"
      node_pid="${node_pid%/stat}"
    fi
  done
  [ -n "$node_pid" ] || node_pid="$runuser_pid"
  [ "$(readlink /proc/"$node_pid"/exe)" = /usr/bin/lograft ] ||
    fail "cannot find the node's process (runuser is pid $runuser_pid)"
  [ "$(stat -c %U /proc/"$node_pid")" = lograft ] || fail "the node does not run as user lograft"
  local adm_gid
  adm_gid="$(getent group adm | cut -d: -f3)"
  grep -Eq "^Groups:.*\b$adm_gid\b" /proc/"$node_pid"/status ||
    fail "the node does not run with the supplementary group adm ($(grep ^Groups: /proc/"$node_pid"/status))"
}

stop_node() {
  [ -n "$runuser_pid" ] || return 0
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid"
  else
    kill -TERM "$runuser_pid" 2>/dev/null || true
  fi
  local _
  for _ in $(seq 1 180); do
    kill -0 "$runuser_pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$runuser_pid" 2>/dev/null; then
    [ -n "$node_pid" ] && kill -KILL "$node_pid" 2>/dev/null
    kill -KILL "$runuser_pid" 2>/dev/null
    wait "$runuser_pid" 2>/dev/null || true
    runuser_pid="" node_pid=""
    [ "${1:-}" = quiet ] || fail "the node did not stop within 90 s of SIGTERM (the unit's TimeoutStopSec)"
    return 0
  fi
  local rc=0
  wait "$runuser_pid" || rc=$?
  runuser_pid="" node_pid=""
  if [ "${1:-}" != quiet ]; then
    [ "$rc" = 0 ] || fail "the node exited with status $rc on SIGTERM"
    tail -n 3 "$work/node.log" | grep -q "stopped" || fail "the node did not log 'stopped' after SIGTERM"
  fi
}

# search_until QUERY: `lograft search QUERY` with no flags, as root on the node's machine (the
# CLI reads /etc/lograft/lograft.toml and the node's <data_dir>/cli-token), retried for up to
# 30 s until its hits name QUERY.
search_until() {
  local _ out=""
  for _ in $(seq 1 60); do
    out="$(env -u LOGRAFT_URL -u LOGRAFT_TOKEN -u LOGRAFT_CONFIG /usr/bin/lograft search "$1" --from -1d --json 2>&1 || true)"
    if grep -q "$1" <<<"$out"; then
      return 0
    fi
    sleep 0.5
  done
  echo "$out" >&2
  fail "lograft search $1 did not find the line within 30 s"
}

installed_version() { dpkg-query -W -f='${Version}' lograft; }

# --- build ---------------------------------------------------------------------------------

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || fail "cannot read the version from Cargo.toml"
say "building lograft $version packages with scripts/package"
start=$(date +%s)
./scripts/package
say "scripts/package took $(($(date +%s) - start)) s"
target_dir="${CARGO_TARGET_DIR:-target}"
deb="$target_dir/debian/lograft_${version}-1_$(dpkg --print-architecture).deb"
rpm_file="$(ls "$target_dir"/generate-rpm/lograft-"$version"-1.*.rpm 2>/dev/null | head -n 1)"
[ -f "$deb" ] || fail "scripts/package made no $deb"
[ -f "$rpm_file" ] || fail "scripts/package made no lograft-$version-1.*.rpm in $target_dir/generate-rpm"
say "$deb: $(du -h "$deb" | cut -f1); $rpm_file: $(du -h "$rpm_file" | cut -f1); binary $(du -h "$target_dir/dist/lograft" | cut -f1)"

# --- the .deb's contents -------------------------------------------------------------------

say "checking the .deb's contents and control data"
dpkg-deb --contents "$deb" >"$work/deb-contents"
# expect_entry FILE MODE PATH: a line of `dpkg-deb --contents` (or the rpm equivalent).
expect_entry() {
  grep -Eq "^$2 (root/root|0/0) +[0-9]+ [0-9-]+ [0-9:]+ \./${3#/}\$" "$1" || {
    cat "$1" >&2
    fail "the .deb has no $3 with mode $2 owned root/root"
  }
}
expect_entry "$work/deb-contents" -rwxr-xr-x usr/bin/lograft
# 0640: the config may hold the cluster join token (postinst gives it to group lograft).
expect_entry "$work/deb-contents" -rw-r----- etc/lograft/lograft.toml
expect_entry "$work/deb-contents" -rw-r--r-- usr/lib/systemd/system/lograft.service
expect_entry "$work/deb-contents" -rw-r--r-- usr/share/doc/lograft/syslog-514.conf
expect_entry "$work/deb-contents" -rw-r--r-- usr/share/doc/lograft/README.md
dpkg-deb --info "$deb" >"$work/deb-info"
for field in "Package: lograft" "Version: ${version}-1" "Section: admin"; do
  grep -q "^ $field\$" "$work/deb-info" || fail "dpkg-deb --info has no '$field'"
done
grep -Eq '^ Depends: .*adduser' "$work/deb-info" || fail "the .deb does not depend on adduser"
for member in conffiles postinst prerm postrm; do
  grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$member( |$)" "$work/deb-info" ||
    fail "dpkg-deb --info lists no control member $member"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/lograft/lograft.toml "$work/control/conffiles" ||
  fail "conffiles does not list /etc/lograft/lograft.toml"
grep -q 'deb-systemd-helper enable lograft.service' "$work/control/postinst" ||
  fail "postinst does not enable lograft.service"
grep -q 'deb-systemd-invoke stop lograft.service' "$work/control/prerm" ||
  fail "prerm does not stop lograft.service on remove"
grep -q 'rm -rf /var/lib/lograft' "$work/control/postrm" || fail "postrm does not purge the data dir"
grep -q 'chgrp lograft /etc/lograft/lograft.toml' "$work/control/postinst" ||
  fail "postinst does not give $CONFIG to group lograft"
grep -q 'chmod g+r,o-rwx /etc/lograft/lograft.toml' "$work/control/postinst" ||
  fail "postinst does not make an existing (0644) $CONFIG private on upgrade"
# The user and the data dir exist before the systemd snippet starts the unit.
user_line="$(grep -n 'adduser --system' "$work/control/postinst" | head -n 1 | cut -d: -f1)"
start_line="$(grep -n 'deb-systemd-invoke \$_dh_action lograft.service' "$work/control/postinst" | head -n 1 | cut -d: -f1)"
[ -n "$user_line" ] && [ -n "$start_line" ] && [ "$user_line" -lt "$start_line" ] ||
  fail "postinst does not create the user before it starts the unit"
for script in postinst prerm postrm; do
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done

# --- the .rpm's contents -------------------------------------------------------------------

say "checking the .rpm's contents, config files and scriptlets"
[ "$(rpm -qp --qf '%{NAME} %{VERSION} %{RELEASE}' "$rpm_file" 2>/dev/null)" = "lograft $version 1" ] ||
  fail "the .rpm is not lograft $version release 1: $(rpm -qp --qf '%{NAME} %{VERSION} %{RELEASE}' "$rpm_file")"
rpm -qpl "$rpm_file" 2>/dev/null >"$work/rpm-list"
for path in /usr/bin/lograft /etc/lograft/lograft.toml /usr/lib/systemd/system/lograft.service \
  /usr/share/doc/lograft/syslog-514.conf; do
  grep -qx "$path" "$work/rpm-list" || fail "rpm -qpl does not list $path"
done
[ "$(rpm -qp --configfiles "$rpm_file" 2>/dev/null)" = /etc/lograft/lograft.toml ] ||
  fail "rpm -qp --configfiles is not exactly /etc/lograft/lograft.toml: $(rpm -qp --configfiles "$rpm_file")"
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]' \
  "$rpm_file" 2>/dev/null >"$work/rpm-files"
for expected in "-rwxr-xr-x root/root  /usr/bin/lograft" \
  "-rw-r----- root/lograft cn /etc/lograft/lograft.toml" \
  "-rw-r--r-- root/root  /usr/lib/systemd/system/lograft.service"; do
  grep -qxF -- "$expected" "$work/rpm-files" || {
    cat "$work/rpm-files" >&2
    fail "the .rpm has no '$expected' (mode, owner, flags c=config n=noreplace, path)"
  }
done
rpm -qp --scripts "$rpm_file" 2>/dev/null >"$work/rpm-scripts"
for expected in "preinstall scriptlet" "useradd --system" "usermod -a -G adm lograft" \
  "postinstall scriptlet" "install -d -o lograft -g lograft -m 0700 /var/lib/lograft" \
  "chmod g+r,o-rwx /etc/lograft/lograft.toml" \
  "systemctl enable lograft.service" "preuninstall scriptlet" "systemctl stop lograft.service" \
  "postuninstall scriptlet" "systemctl try-restart lograft.service"; do
  grep -qF -- "$expected" "$work/rpm-scripts" || fail "rpm -qp --scripts shows no '$expected'"
done

for tag in PREIN POSTIN PREUN POSTUN; do
  rpm -qp --qf "%{$tag}" "$rpm_file" 2>/dev/null >"$work/rpm-$tag.sh"
  sh -n "$work/rpm-$tag.sh" || fail "the .rpm's $tag scriptlet is not valid sh"
done

# --- install -------------------------------------------------------------------------------

say "installing $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$(realpath "$deb")" >"$work/apt.log" 2>&1 || {
  cat "$work/apt.log" >&2
  fail "apt-get install $deb failed"
}
[ "$(installed_version)" = "${version}-1" ] || fail "installed version is $(installed_version), not ${version}-1"

passwd_entry="$(getent passwd lograft)" || fail "the package created no user lograft"
uid="$(cut -d: -f3 <<<"$passwd_entry")"
sys_uid_max="$(awk '$1 == "SYS_UID_MAX" {print $2}' /etc/login.defs 2>/dev/null)"
[ "$uid" -le "${sys_uid_max:-999}" ] ||
  fail "user lograft (uid $uid) is not a system user"
[ "$(cut -d: -f6 <<<"$passwd_entry")" = "$DATA" ] || fail "user lograft's home is not $DATA: $passwd_entry"
case "$(cut -d: -f7 <<<"$passwd_entry")" in
*nologin | /bin/false) ;;
*) fail "user lograft has a login shell: $passwd_entry" ;;
esac
getent group lograft >/dev/null || fail "the package created no group lograft"
[ "$(id -gn lograft)" = lograft ] || fail "user lograft's primary group is $(id -gn lograft), not lograft"
id -nG lograft | tr ' ' '\n' | grep -qx adm || fail "user lograft is not a member of adm ($(id -nG lograft))"
[ "$(stat -c '%a %U %G' "$DATA")" = "700 lograft lograft" ] ||
  fail "$DATA is $(stat -c '%a %U %G' "$DATA"), not 700 lograft lograft"
[ "$(stat -c '%a %U %G' /usr/bin/lograft)" = "755 root root" ] || fail "/usr/bin/lograft is not 0755 root:root"
[ "$(stat -c '%a %U %G' "$CONFIG")" = "640 root lograft" ] ||
  fail "$CONFIG is $(stat -c '%a %U %G' "$CONFIG"), not 640 root lograft"
if runuser -u nobody -- cat "$CONFIG" >/dev/null 2>&1; then
  fail "user nobody can read $CONFIG (it may hold the cluster join token)"
fi
[ -f "$UNIT_DIR/lograft.service" ] || fail "no $UNIT_DIR/lograft.service"
[ -L /etc/systemd/system/multi-user.target.wants/lograft.service ] ||
  fail "the unit is not enabled (no /etc/systemd/system/multi-user.target.wants/lograft.service)"
/usr/bin/lograft --version | grep -qx "lograft $version" ||
  fail "lograft --version says '$(/usr/bin/lograft --version)', not 'lograft $version'"
/usr/bin/lograft config check "$CONFIG" >"$work/resolved" || fail "lograft config check $CONFIG fails"
grep -qx "data_dir = \"$DATA\"" "$work/resolved" || fail "the packaged config's data_dir is not $DATA"

# The packaged config documents every key: each key of the resolved config (and the two that
# are never printed: cluster.join_token and the [tls] table) appears in it, set or commented.
keys="$(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$work/resolved") join_token cert key ca"
for key in $keys; do
  grep -Eq "^(# )?$key = " "$CONFIG" || fail "$CONFIG does not document the key $key"
done
for section in collect queue index api auth metrics tls cluster; do
  grep -Eq "^(# )?\[$section\]$" "$CONFIG" || fail "$CONFIG has no [$section] section"
done

say "systemd-analyze verify $UNIT_DIR/lograft.service"
verify_out="$(systemd-analyze verify "$UNIT_DIR/lograft.service" 2>&1)" || {
  echo "$verify_out" >&2
  fail "systemd-analyze verify $UNIT_DIR/lograft.service failed"
}
if grep -i 'lograft' <<<"$verify_out"; then
  fail "systemd-analyze verify warns about the unit (above)"
fi

# --- first start ---------------------------------------------------------------------------

say "starting the node as user lograft: ${EXEC_START[*]}"
start_node
grep -q "lograft is serving" "$work/node.log" || fail "the node did not log 'lograft is serving'"
grep -q "listen=127.0.0.1:7700" "$work/node.log" || fail "the node did not log its listen address"
grep -q "$DATA/initial-admin-password" "$work/node.log" ||
  fail "the first start did not log where the initial admin password is"
[ "$(stat -c '%a %U' "$DATA/initial-admin-password")" = "600 lograft" ] ||
  fail "$DATA/initial-admin-password is not 0600 lograft"
password_before="$(cat "$DATA/initial-admin-password")"
[ "$(stat -c '%a %U' "$DATA/cli-token")" = "600 lograft" ] ||
  fail "$DATA/cli-token (the local CLI's token) is not 0600 lograft"
if grep -q $'\e\[' "$work/node.log"; then fail "the node's log has ANSI colour codes despite NO_COLOR"; fi

# A new file under /var/log, readable only through the adm group (as much of /var/log is):
# the default runner (tailx /var/log/*.log) picks it up.
marker="pkgtest$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
install -m 0640 -o root -g adm /dev/null "$TEST_LOG"
echo "lograft package test line $marker" >>"$TEST_LOG"
say "searching for $marker, written to $TEST_LOG"
search_until "$marker"
/usr/bin/lograft search "$marker" --from -1d --json | grep -q "\"path\":\"$TEST_LOG\"" ||
  fail "the hit does not come from $TEST_LOG"
stop_node
# Everything the node wrote is private: the store holds the cluster secret.
loose="$(find "$DATA" \( -type d -perm /077 \) -o \( -type f -perm /077 \) | head -n 5)"
[ -z "$loose" ] || fail "the node left files or directories other users may read in $DATA: $loose"

# --- upgrade -------------------------------------------------------------------------------

say "editing $CONFIG (0644, as an older package installed it), then upgrading"
sed -i 's/^# retention_days = 7$/retention_days = 20/' "$CONFIG"
chmod 0644 "$CONFIG"
grep -qx 'retention_days = 20' "$CONFIG" || fail "could not edit retention_days in $CONFIG"
upgrade_version="${version}+pkgtest"
./scripts/package --no-build --deb-only --version "$upgrade_version" --out "$work/upgrade" >"$work/package2.log" 2>&1 || {
  cat "$work/package2.log" >&2
  fail "scripts/package --version $upgrade_version failed"
}
deb2="$work/upgrade/lograft_${upgrade_version}-1_$(dpkg --print-architecture).deb"
[ -f "$deb2" ] || fail "scripts/package --version made no $deb2"
dpkg --compare-versions "${upgrade_version}-1" gt "${version}-1" || fail "$upgrade_version does not sort after $version"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "$deb2" >"$work/apt2.log" 2>&1 || {
  cat "$work/apt2.log" >&2
  fail "apt-get install $deb2 (the upgrade) failed"
}
[ "$(installed_version)" = "${upgrade_version}-1" ] || fail "after the upgrade the version is $(installed_version)"
grep -qx 'retention_days = 20' "$CONFIG" || fail "the upgrade lost the edit of $CONFIG"
/usr/bin/lograft config check "$CONFIG" | grep -qx 'retention_days = 20' ||
  fail "lograft config check does not see retention_days = 20 after the upgrade"
[ "$(stat -c '%a %U %G' "$DATA")" = "700 lograft lograft" ] || fail "the upgrade changed $DATA's owner or mode"
[ "$(stat -c '%a %U %G' "$CONFIG")" = "640 root lograft" ] ||
  fail "the upgrade left $CONFIG $(stat -c '%a %U %G' "$CONFIG"), not 640 root lograft"
[ "$(id -u lograft)" = "$uid" ] || fail "the upgrade changed user lograft's uid"
[ "$(cat "$DATA/initial-admin-password")" = "$password_before" ] || fail "the upgrade changed the initial password"

say "starting the upgraded node; the line indexed before must still be found"
start_node
search_until "$marker"
[ "$(grep -c "created the first user" "$work/node.log" || true)" = 1 ] ||
  fail "the upgraded node created the first user again"
stop_node

# --- remove and purge ----------------------------------------------------------------------

say "apt-get remove lograft: keeps the data and the config"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q lograft >"$work/apt3.log" 2>&1 || {
  cat "$work/apt3.log" >&2
  fail "apt-get remove lograft failed"
}
[ ! -e /usr/bin/lograft ] || fail "apt-get remove left /usr/bin/lograft"
[ ! -e "$UNIT_DIR/lograft.service" ] || fail "apt-get remove left the unit"
dpkg-query -W -f='${Status}' lograft | grep -q 'config-files' || fail "lograft is not in state config-files after remove"
[ -d "$DATA/index" ] || fail "apt-get remove deleted the data in $DATA"
grep -qx 'retention_days = 20' "$CONFIG" || fail "apt-get remove deleted or reset $CONFIG"

say "dpkg --purge lograft: deletes the data and the config"
dpkg --purge lograft >"$work/purge.log" 2>&1 || {
  cat "$work/purge.log" >&2
  fail "dpkg --purge lograft failed"
}
[ ! -e "$DATA" ] || fail "dpkg --purge left $DATA"
[ ! -e /etc/lograft ] || fail "dpkg --purge left /etc/lograft"
[ ! -e /etc/systemd/system/multi-user.target.wants/lograft.service ] || fail "dpkg --purge left the unit enabled"
[ ! -e /etc/systemd/system/lograft.service ] || fail "dpkg --purge left a mask of the unit"
getent passwd lograft >/dev/null || fail "dpkg --purge deleted user lograft (it is documented to keep it)"
say "all package checks passed"
