"""Where the library lives: one module per backend, all on one seam (``base``).

``source_for(config)`` picks the backend from the config's source block
(none: the local library).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rulebot.config import Config
    from rulebot.sources.base import Source


def source_for(config: Config) -> Source:
    kind = config.source_kind
    if kind == "pocket":
        from rulebot.sources.pocket import PocketSource

        return PocketSource(config)
    if kind == "karakeep":
        from rulebot.sources.karakeep import KarakeepSource

        assert config.service is not None
        return KarakeepSource(config.service)
    from rulebot.sources.local import LocalSource

    return LocalSource()
