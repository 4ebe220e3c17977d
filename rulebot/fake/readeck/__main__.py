"""``python -m rulebot.fake.readeck``."""

from rulebot.fake.readeck import main

raise SystemExit(main())
