"""Where the library lives: one module per backend, all on one seam (``base``).

``source_for(config)`` picks the backend from the config's source block
(none: the local library). A new backend adds one line to ``BACKENDS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rulebot.rules.config import Config
    from rulebot.sources.base import Source

# config block -> "module:factory"; the factory takes the Config
BACKENDS: dict[str, str] = {
    "local": "rulebot.sources.local.source:from_config",
    "pocket": "rulebot.sources.pocket.source:from_config",
    "karakeep": "rulebot.sources.karakeep.source:from_config",
    "wallabag": "rulebot.sources.wallabag.source:from_config",
    "readeck": "rulebot.sources.readeck.source:from_config",
    "shaarli": "rulebot.sources.shaarli.source:from_config",
    "linkding": "rulebot.sources.linkding.source:from_config",
}


def source_for(config: Config) -> Source:
    module_name, factory = BACKENDS[config.source_kind].split(":")
    module = importlib.import_module(module_name)
    source: Source = getattr(module, factory)(config)
    return source
