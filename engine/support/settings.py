"""Settings from the environment, read in this one place: ENGINE_WORKSPACE, ENGINE_RULES, ENGINE_CONFIG.

Each is the default of the command-line option of the same name; an explicit option wins over the
variable, the variable over the fallback:

- ENGINE_WORKSPACE, else `workspace` (the folder holding engine.db and reports);
- ENGINE_RULES, else ./configs/rules, else the example rules shipped beside the package;
- ENGINE_CONFIG, else ./configs (if it has agencies.yaml), else the example configs shipped beside the package.

An empty ENGINE_RULES or ENGINE_CONFIG counts as unset. (ENGINE_NOW belongs to engine.support.clock.)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def default_rules() -> Path:
    """./configs/rules, else the example rules shipped beside the package."""
    here = Path("configs/rules")
    return here if here.is_dir() else PACKAGE_ROOT / "configs" / "rules"


def default_config() -> Path:
    """./configs (if it has agencies.yaml), else the example configs shipped beside the package."""
    here = Path("configs")
    return here if (here / "agencies.yaml").is_file() else PACKAGE_ROOT / "configs"


class Settings(BaseSettings):
    """The engine's settings; `Settings()` reads the environment as it is now."""

    model_config = SettingsConfigDict(env_prefix="ENGINE_", extra="ignore")

    workspace: Path = Field(Path("workspace"), description="Folder holding engine.db and reports.")
    rules: Path = Field(default_factory=default_rules, description="Folder of rule files.")
    config: Path = Field(default_factory=default_config, description="Folder of the conference configuration.")

    @field_validator("rules", "config", mode="before")
    @classmethod
    def _empty_is_unset(cls, value, info):
        if value == "":
            return default_rules() if info.field_name == "rules" else default_config()
        return value
