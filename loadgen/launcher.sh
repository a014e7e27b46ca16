#!/bin/sh
# The main process of a loadgen container on zcbench's own machine: it runs each command zcbench
# hands it, one at a time, as its own child, so wrk's CPU time stays in the container's cgroup.
# A `docker exec` took 45-90 ms here before wrk even started (and varied: each cell's lead had to
# cover the worst of it); starting a child takes a millisecond.
#   sh launcher.sh DIR
# zcbench (measure/loadgen/launcher.py) writes NAME.cmd, one shell-quoted command line, then NAME
# to the FIFO DIR/requests; this runs it with NAME.out and NAME.err, then writes "NAME STATUS" to
# the FIFO DIR/done.
set -u
cd "$1" || exit 1
# Read-write: the FIFO never reads as ended, and zcbench's non-blocking open finds a reader.
exec 3<>requests
while IFS= read -r name <&3; do
    command=$(cat "$name.cmd")
    (eval "exec $command") >"$name.out" 2>"$name.err" </dev/null
    echo "$name $?" >done
done
