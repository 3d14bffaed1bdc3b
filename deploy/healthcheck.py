"""Container health check: exit 0 when the service on this container's port 8000 answers 200 on a route.

    python /opt/muongan/healthcheck.py /healthz      # alive (the image's HEALTHCHECK)
    python /opt/muongan/healthcheck.py /readyz       # model loaded (compose, before nginx starts)

A file, not a `python -c` one-liner: podman's Docker-compatible API splits a health check's arguments at
spaces, and a command without spaces in its arguments runs the same on every engine. Standard library only.
"""

import sys
import urllib.request

if __name__ == "__main__":
    route = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:8000{route}", timeout=4) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError as error:
        print(f"{route}: {error}", file=sys.stderr)
        sys.exit(1)
