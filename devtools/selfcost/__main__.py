import sys

from devtools.selfcost.run import main

sys.exit(main())
