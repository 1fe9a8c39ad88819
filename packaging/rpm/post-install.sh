# lograft %post ($1: 1 install, 2 upgrade): the data dir; enable (and start) on a fresh install.
# The data dir is private (its store holds the cluster secret); an existing one is tightened.
if [ ! -d /var/lib/lograft ]; then
  install -d -o lograft -g lograft -m 0700 /var/lib/lograft
else
  chmod 0700 /var/lib/lograft
fi
# The config may hold the cluster join token: 0640 root:lograft. A 0644 file kept from an older
# package (%config(noreplace)) is fixed, since the node refuses a world-readable one with
# join_token.
if [ -f /etc/lograft/lograft.toml ]; then
  chgrp lograft /etc/lograft/lograft.toml
  chmod g+r,o-rwx /etc/lograft/lograft.toml
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
  systemctl enable lograft.service >/dev/null 2>&1 || :
  if [ -d /run/systemd/system ]; then
    systemctl start lograft.service >/dev/null 2>&1 || :
  fi
fi
exit 0
