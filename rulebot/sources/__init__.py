"""Where the library lives: one package per backend, all on one seam (``base``).

``source_for(config)`` picks the backend from the config's source block
(none: the local library). A new backend adds one line to ``BACKENDS``.

A server backend is a package ``sources/<name>/`` of two modules on the
shared pieces, and nothing else in ``sources/`` changes:

- ``api.py``: a ``client.ServiceClient`` subclass (``service``, ``config``,
  ``api_path``, its ``error``/``not_found`` classes, ``token()``, and where
  the service has its own wording ``reason()``/``refused()``), its paged
  listing (``self.listing(…)`` guards it, ``Listing.once`` passes each item
  on once) and how one raw item becomes an ``Item`` (``fields`` reads each
  field, ``ItemDataError`` naming the item);
- ``source.py``: a ``server.ServerSession`` subclass (``kind``, ``noun``;
  ``listing``/``to_item`` for the default full-scan sync, or its own
  ``sync`` on ``syncing.Sync``/``stored_cursor``/``sources.cursors`` for a
  change feed; ``item_unit`` (``editing.gather`` sums a unit up) and
  ``account_wide``), a ``server.ServerSource`` subclass (``kind``, ``caps``,
  ``client()``, ``session()``, ``refine`` where an action has no native
  form: ``refining.Replay``), and ``from_config = XSource.from_config``.

Outside ``sources/``: its ``Capabilities`` (``rules/capabilities.py``), its
config block (``rules/config.py``, ``rules/schema.py``), its fake or real
server fixture and conformance backend, and a docs page.
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
    "readwise": "rulebot.sources.readwise.source:from_config",
    "raindrop": "rulebot.sources.raindrop.source:from_config",
}


def source_for(config: Config) -> Source:
    module_name, factory = BACKENDS[config.source_kind].split(":")
    module = importlib.import_module(module_name)
    source: Source = getattr(module, factory)(config)
    return source
