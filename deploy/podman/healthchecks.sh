#!/bin/sh
# Runs the health checks of every running podman container, every PERIOD seconds (default 3), until stopped.
#
# podman schedules HEALTHCHECKs with systemd timers; on a host without systemd (a CI runner, a container) none
# ever run, every container stays "starting" and compose's `depends_on: condition: service_healthy` never
# holds. This loop does what those timers would. Run it beside `compose up` on such a host (make compose-up).
set -u
period=${1:-3}
while :; do
    for id in $(podman ps -q --filter health=starting) $(podman ps -q --filter health=healthy) \
        $(podman ps -q --filter health=unhealthy); do
        podman healthcheck run "$id" >/dev/null 2>&1
    done
    sleep "$period"
done
