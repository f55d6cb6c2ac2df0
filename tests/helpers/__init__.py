"""What several test modules share: literal-row builders (rows.py), the delta-rs fault injection
(fault_injection.py), and the scripts some tests start as processes of their own. Test modules
import from here, never from each other."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
