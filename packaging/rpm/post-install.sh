# lograft %post ($1: 1 install, 2 upgrade): the data dir; enable (and start) on a fresh install.
if [ ! -d /var/lib/lograft ]; then
  install -d -o lograft -g lograft -m 0750 /var/lib/lograft
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
