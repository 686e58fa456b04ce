import sys

from spanchain.cli.commands import main

sys.exit(main())
