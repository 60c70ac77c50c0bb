"""tblite on one thread in these tests: the machine is shared and labels must be reproducible."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
