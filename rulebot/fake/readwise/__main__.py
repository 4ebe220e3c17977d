"""``python -m rulebot.fake.readwise``."""

from rulebot.fake.readwise import main

raise SystemExit(main())
