"""Where the repository is, for local defaults (the lake folder, caches). Unused on EMR."""

from __future__ import annotations

from pathlib import Path

#: Repository root (this file is emr_jobs/core/paths.py).
REPO_ROOT = Path(__file__).resolve().parents[2]
