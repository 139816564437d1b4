"""``python -m producer_sim publish ...``"""

import sys

from producer_sim.cli import main

sys.exit(main())
