"""The repository's folders the tests read: the root, the shipped rules and configuration."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "configs" / "rules"
CONFIG_DIR = ROOT / "configs"
