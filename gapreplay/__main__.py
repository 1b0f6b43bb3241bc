"""`python -m gapreplay`, and the main file `spark-submit` needs, since it runs a .py file:
`spark-submit --py-files gapreplay-*.whl gapreplay/__main__.py corpus --config …`."""

import sys

from gapreplay.cli import main

if __name__ == "__main__":
    sys.exit(main())
