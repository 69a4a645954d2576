#!/usr/bin/env bash
# Stop the daemons of start.sh by their PID files, newest first, and remove its namespace.
BASE=${BASE:-/tmp/vlcp-slurm}
stop() {
    local pidfile=$1 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2> /dev/null || return 0
    for _ in $(seq 40); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.25; done
    kill -9 "$pid" 2> /dev/null
}
stop "$BASE/run/slurmd.pid"
stop "$BASE/run/slurmctld.pid"
stop "$BASE/run/slurmdbd.pid"
stop "$BASE/run/mysqld.pid"
stop /run/munge/munged.pid
findmnt "$BASE/netns" > /dev/null 2>&1 && umount "$BASE/netns"
rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf
