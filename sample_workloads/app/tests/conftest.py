"""Put the sample app on sys.path so its tests import it as plain modules."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
