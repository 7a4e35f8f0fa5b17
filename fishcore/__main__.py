import sys

from fishcore.cli import main

sys.exit(main())
