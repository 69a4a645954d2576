#!/usr/bin/env bash
# Start vlcp's single-node Slurm test cluster as root: munge, MariaDB, slurmdbd, slurmctld,
# slurmd. Every daemon runs in a network namespace holding only a loopback interface (slurmdbd
# listens on all addresses whatever its config says), so nothing is reachable from outside.
# State, logs and PID files live under $BASE. Run clients (sbatch, sacct, snakemake) through
# "$BASE/in-cluster.sh COMMAND". Stop with stop.sh.
set -euo pipefail
BASE=${BASE:-/tmp/vlcp-slurm}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
mkdir -p "$BASE"/{etc,spool/ctld,spool/d,log,run,gpu,mysql}

if ! findmnt "$BASE/netns" >/dev/null 2>&1; then
    touch "$BASE/netns"
    unshare --net="$BASE/netns" true
    nsenter --net="$BASE/netns" ip link set lo up
    # getaddrinfo with AI_ADDRCONFIG finds nothing without one non-loopback IPv4 address.
    nsenter --net="$BASE/netns" ip addr add 10.254.254.1/32 dev lo
fi
IN="nsenter --net=$BASE/netns"
printf '#!/bin/sh\nexec nsenter --net=%s "$@"\n' "$BASE/netns" > "$BASE/in-cluster.sh"
chmod +x "$BASE/in-cluster.sh"

for i in 0 1; do [ -e "$BASE/gpu/nvidia$i" ] || mknod -m 666 "$BASE/gpu/nvidia$i" c 1 3; done

fill() { sed -e "s#@BASE@#$BASE#g" -e "s#@HOST@#$HOST#g" -e "s#@CPUS@#$CPUS#g" -e "s#@MEM_MB@#$MEM_MB#g" "$1"; }
fill "$HERE/slurm.conf.in" > "$BASE/etc/slurm.conf"
case "$(getent ahostsv4 "$HOST" | awk 'NR == 1 {print $1}')" in
    127.*) echo "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny" >> "$BASE/etc/slurm.conf" ;;
esac
fill "$HERE/gres.conf.in" > "$BASE/etc/gres.conf"
fill "$HERE/slurmdbd.conf.in" > "$BASE/etc/slurmdbd.conf"
chmod 600 "$BASE/etc/slurmdbd.conf"
# Job steps drop SLURM_CONF, so the configuration must be at the default path.
mkdir -p /etc/slurm
for f in slurm.conf gres.conf slurmdbd.conf; do ln -sfn "$BASE/etc/$f" "/etc/slurm/$f"; done

if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge > /dev/null

chown mysql:mysql "$BASE/mysql" "$BASE/run" "$BASE/log"
[ -d "$BASE/mysql/mysql" ] || mariadb-install-db --no-defaults --user=mysql --datadir="$BASE/mysql" \
    --auth-root-authentication-method=socket > "$BASE/log/mariadb-install.log" 2>&1
nohup $IN /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$BASE/mysql" \
    --socket="$BASE/run/mysqld.sock" --pid-file="$BASE/run/mysqld.pid" --bind-address=127.0.0.1 --port=3306 \
    --skip-name-resolve --innodb-buffer-pool-size=256M --log-error="$BASE/log/mariadb.err" > /dev/null 2>&1 &
for _ in $(seq 60); do mariadb-admin --no-defaults -S "$BASE/run/mysqld.sock" ping > /dev/null 2>&1 && break; sleep 0.5; done
mariadb --no-defaults -S "$BASE/run/mysqld.sock" -u root -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'vlcp-test-only';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
$IN slurmdbd
for _ in $(seq 60); do $IN sacctmgr -n show cluster > /dev/null 2>&1 && break; sleep 0.5; done
$IN sacctmgr -i add cluster vlcptest > /dev/null 2>&1 || true
$IN sacctmgr -i add account vlcptest Description=test Organization=test > /dev/null 2>&1 || true
$IN sacctmgr -i add user "$(id -un)" DefaultAccount=vlcptest > /dev/null 2>&1 || true

# -c: start without the jobs of an earlier run that was killed before they ended (its state is kept in
# $BASE/spool), which would otherwise hold the node and leave the next run's jobs pending.
$IN slurmctld -c -i
$IN slurmd -N "$HOST"
for _ in $(seq 60); do
    state=$($IN sinfo -h -N -o %t 2> /dev/null | head -1 || true)
    case "$state" in
        idle*) break ;;
        inval* | drain* | down*) $IN scontrol update nodename="$HOST" state=resume || true ;;
    esac
    sleep 0.5
done
$IN sinfo -o "%P %a %D %t %N %G"
