"""``python -m rulebot.fake.raindrop``."""

from rulebot.fake.raindrop import main

raise SystemExit(main())
