"""``python -m rulebot.fake.karakeep``."""

from rulebot.fake.karakeep import main

raise SystemExit(main())
