"""Training of the project's small learned parts (`tandem train ...`): the guard heads today."""
