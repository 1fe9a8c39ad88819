# lograft %pre ($1: 1 install, 2 upgrade): the system user and group before the files land.
getent group lograft >/dev/null || groupadd --system lograft
getent passwd lograft >/dev/null || useradd --system --gid lograft --home-dir /var/lib/lograft \
  --no-create-home --shell /sbin/nologin --comment "lograft log appliance" lograft
# Members of adm may read (part of) /var/log.
if getent group adm >/dev/null; then
  usermod -a -G adm lograft || :
fi
exit 0
