from rulebot.cli import main

raise SystemExit(main())
