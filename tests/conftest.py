"""Shared test setup: headless Qt, few threads (the machine has 2 cores), fixed seeds."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
