import sys

from ftnotes.grade.cli import main

sys.exit(main())
