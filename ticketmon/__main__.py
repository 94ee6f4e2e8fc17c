import sys

from ticketmon.cli import main

sys.exit(main())
