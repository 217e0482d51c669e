import sys

from gateway.app import main

if __name__ == "__main__":  # not when a worker process (coresdk.auth.workers, spawned) re-imports the main module
    sys.exit(main())
