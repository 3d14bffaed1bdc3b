#!/bin/sh
# Runs nginx and keeps its upstream list equal to the replicas that DNS names now.
#
# A compose service's replicas share one DNS name (Docker's embedded DNS, podman's aardvark-dns), one address
# each. nginx resolves names in an upstream block only when it starts, so every few seconds this re-resolves
# the name and, when the set of addresses changed, rewrites the upstream's server lines and reloads nginx:
# `compose up --scale muongan=N` and a replica that stops are picked up without a restart, and a reload lets
# the streams in flight finish on the old workers. It works with any nginx and any engine's DNS server.
#
# MUONGAN_UPSTREAM (default muongan:8000) names the replicas; MUONGAN_UPSTREAM_REFRESH_S (default 5) the period.
set -eu

upstream=${MUONGAN_UPSTREAM:-muongan:8000}
refresh=${MUONGAN_UPSTREAM_REFRESH_S:-5}
servers=/etc/nginx/muongan/upstream.conf

# One server line per address; with none (no replica up yet), one that is down, so nginx answers 502.
render() {
    getent ahostsv4 "${upstream%:*}" | awk -v port="${upstream##*:}" '
        !seen[$1]++ { printf "server %s:%s;\n", $1, port; n++ }
        END { if (!n) print "server 127.0.0.1:9 down;" }' | sort
}

render >"$servers"
nginx -g 'daemon off;' &
nginx=$!
# SIGQUIT is nginx's graceful stop: no new connections, streams in flight run to their end.
trap 'kill -QUIT "$nginx"; wait "$nginx"; exit 0' TERM INT QUIT

while kill -0 "$nginx" 2>/dev/null; do
    sleep "$refresh" &
    wait $! || true
    render >"$servers.new"
    if cmp -s "$servers.new" "$servers"; then
        rm -f "$servers.new"
    else
        mv "$servers.new" "$servers"
        echo "muongan-upstreams: replicas now $(awk '{printf "%s ", $2}' "$servers")" >&2
        kill -HUP "$nginx"
    fi
done
wait "$nginx"
