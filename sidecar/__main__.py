import sys

from sidecar.server import main

sys.exit(main())
