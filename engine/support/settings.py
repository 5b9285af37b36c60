"""Settings from the environment, read in this one place: ENGINE_WORKSPACE, ENGINE_RULES, ENGINE_CONFIG.

Each is the default of the command-line option of the same name; an explicit option wins over the
variable, the variable over the fallback:

- ENGINE_WORKSPACE, else `workspace` (the folder holding engine.db and reports);
- ENGINE_RULES, else ./configs/rules, else the example rules shipped beside the package;
- ENGINE_CONFIG, else ./configs (if it has agencies.yaml), else the example configs shipped beside the package.

An empty ENGINE_RULES or ENGINE_CONFIG counts as unset. (ENGINE_NOW belongs to engine.support.clock.)

The scheduled flows take no path from whoever creates a flow run: `engine serve` binds the three
(`bind`) in the environment of the process that runs them, and the flows read them back (`bound`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.support.errors import EngineError

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


BOUND = {"workspace": "ENGINE_WORKSPACE", "rules": "ENGINE_RULES", "config": "ENGINE_CONFIG"}


class NotBound(EngineError):
    """A scheduled flow run outside `engine serve`: nothing tells it which workspace to work on."""


def bind(workspace: Path, rules: Path, config: Path) -> dict[str, str]:
    """The environment `engine serve` gives the flows it runs: the three folders, absolute."""
    given = {"workspace": workspace, "rules": rules, "config": config}
    return {BOUND[k]: str(Path(v).resolve()) for k, v in given.items()}


def bound() -> Settings:
    """The workspace, rules and configuration `engine serve` bound for its flows (see bind); refused
    (NotBound) unless all three are set, absolute, in this process's environment."""
    settings = Settings()
    unset = [
        v for k, v in BOUND.items() if k not in settings.model_fields_set or not getattr(settings, k).is_absolute()
    ]
    if unset:
        raise NotBound(
            f"{', '.join(unset)} not set to an absolute path: the scheduled flows run only under `engine serve`, "
            "which binds the workspace, rules and configuration when it starts"
        )
    return settings
