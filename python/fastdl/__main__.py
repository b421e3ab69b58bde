import sys

from fastdl.cli import main

sys.exit(main())
