"""``python -m rulebot.fake.pocket``."""

from rulebot.fake.pocket import main

raise SystemExit(main())
