#!/usr/bin/env bash
# Stop the daemons that start-cluster.sh started (by their pid files).
for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
  [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
pkill -x munged 2>/dev/null
exit 0
