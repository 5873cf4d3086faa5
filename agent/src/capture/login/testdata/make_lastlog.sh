#!/bin/sh
# Produces a real Debian 12 lastlog with three writers, without touching the
# machine's own accounts or logs: a mount namespace with a private copy of /etc,
# private /var/log and /run; sshd in a network namespace; ssh -tt from another.
set -eu
D=$(mktemp -d /tmp/sb-lastlog.XXXXXX)
mkdir -p "$D/etc" "$D/varlog"
cp -a /etc/. "$D/etc/"
ip netns add sbllfs; ip netns add sbllfc
trap 'ip netns del sbllfs; ip netns del sbllfc; kill $HOLDER 2>/dev/null || true' EXIT
ip link add sbllv0 netns sbllfs type veth peer name sbllv1 netns sbllfc
ip -n sbllfs addr add 10.233.9.1/24 dev sbllv0; ip -n sbllfs link set sbllv0 up; ip -n sbllfs link set lo up
ip -n sbllfc addr add 10.233.9.2/24 dev sbllv1; ip -n sbllfc link set sbllv1 up; ip -n sbllfc link set lo up
unshare --mount --propagation private sh -c "
  mount --bind '$D/etc' /etc
  mount --bind '$D/varlog' /var/log
  mount -t tmpfs -o mode=755 tmpfs /run
  mkdir -p /run/sshd
  install -m 664 -g utmp /dev/null /var/log/lastlog
  install -m 664 -g utmp /dev/null /var/log/wtmp
  install -m 664 -g utmp /dev/null /run/utmp
  touch '$D/ready'
  exec sleep 600" &
HOLDER=$!
while [ ! -e "$D/ready" ]; do sleep 0.1; done
IN="nsenter -t $HOLDER -m"
$IN sh -c "echo 'root:Fixture-pw-1' | chpasswd"
ssh-keygen -q -t ed25519 -N '' -f "$D/hostkey"
printf 'Port 2222\nListenAddress 10.233.9.1\nHostKey %s\nPidFile %s\nUsePAM yes\nPasswordAuthentication yes\nPermitRootLogin yes\n' "$D/hostkey" "$D/sshd.pid" > "$D/sshd_config"
$IN --net=/run/netns/sbllfs /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
sleep 1
# 1. sshd (record_login, session with a terminal): uid 0, host 10.233.9.2.
nsenter --net=/run/netns/sbllfc sshpass -p Fixture-pw-1 ssh -tt -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -p 2222 root@10.233.9.1 true < /dev/null
kill "$(cat "$D/sshd.pid")"
# 2. login through pam_lastlog on a pty, with a remote host: uid 1 (daemon).
$IN script -qec "login -f daemon -h 192.0.2.33" /dev/null < /dev/null || true
# 3. lastlog -S (time only): uid 2 (bin).
$IN lastlog -S -u bin
$IN lastlog
cp "$D/varlog/lastlog" /tmp/sbfix/debian12_lastlog
grep -E '^(root|daemon|bin|sys):' "$D/etc/passwd" > /tmp/sbfix/debian12_passwd
ls -la /tmp/sbfix; cat "$D/sshd.log"
