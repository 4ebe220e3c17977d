"""``python -m rulebot.fake.linkding``."""

from rulebot.fake.linkding import main

raise SystemExit(main())
