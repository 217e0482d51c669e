import sys

from sidecar.server import main

if __name__ == "__main__":  # not when a worker process (coresdk.auth.workers, spawned) re-imports the main module
    sys.exit(main())
