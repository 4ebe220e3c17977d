"""``python -m rulebot.fake.shaarli``."""

from rulebot.fake.shaarli import main

raise SystemExit(main())
