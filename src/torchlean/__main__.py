"""``python -m torchlean``: the command line."""

import sys

from torchlean.cli import main

sys.exit(main())
