"""The commands behind ``rulebot COMMAND``, one module per kind; rulebot.cli
parses the arguments and calls them."""
