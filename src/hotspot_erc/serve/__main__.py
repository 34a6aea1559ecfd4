"""``python -m hotspot_erc.serve [options]`` is ``hotspot-erc serve [options]``."""

import sys

from hotspot_erc.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
