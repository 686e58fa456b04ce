import sys

from spanchain.bench import main

sys.exit(main())
