"""One faithful fake server per service; python -m rulebot.fake.NAME."""
