import sys
from pathlib import Path

# The test helpers (stats.py, exact_square_gd.py) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
