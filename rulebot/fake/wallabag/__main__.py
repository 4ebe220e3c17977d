"""``python -m rulebot.fake.wallabag``."""

from rulebot.fake.wallabag import main

raise SystemExit(main())
