"""Study definitions: the validated model of ``studies/<id>/study.yaml``."""
