import sys

from telcorec.launch.cli import main

sys.exit(main(sys.argv[1:]))
