"""``python -m speechneurons``: the quick look (:mod:`speechneurons.cli`)."""

import sys

from speechneurons.cli import main

sys.exit(main())
