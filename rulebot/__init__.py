"""rulebot: rules for a read-it-later library, planned, reviewed and applied:
a local library filled from a Pocket export, or the server it lives on."""

# The one version string: pyproject.toml reads it, `rulebot --version` and the
# User-Agent say it, and a release is the git tag "v" + it, which the recipes
# install (tests/test_recipes.py holds them to it; CHANGELOG.md says what each holds).
__version__ = "0.1.0"
