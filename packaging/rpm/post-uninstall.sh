# lograft %postun ($1: 0 erase, 1 upgrade): on upgrade, restart a running node on the new
# binary. Erasing keeps /var/lib/lograft, the user and a modified config (as
# /etc/lograft/lograft.toml.rpmsave); rpm has no purge: remove them by hand.
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if [ "$1" -ge 1 ]; then
    systemctl try-restart lograft.service >/dev/null 2>&1 || :
  fi
fi
exit 0
