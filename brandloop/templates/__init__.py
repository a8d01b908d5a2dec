"""Prompt-template governance: versions, review, labels, lineage statistics, YAML files, drift.

The registry rows live in ``brandloop.registry.models`` (core) and ``models_templates``; this
package holds the rules: who may do what to a template, in which order, and what is audited.
"""

from brandloop.templates.governance import (
    GovernanceError,
    GovernancePolicy,
    TemplateSpec,
    approve,
    comment,
    create_template,
    diff_versions,
    load_governance_policy,
    move_label,
    new_version,
    parse_label_spec,
    reject,
    submit,
)

__all__ = [
    "GovernanceError",
    "GovernancePolicy",
    "TemplateSpec",
    "approve",
    "comment",
    "create_template",
    "diff_versions",
    "load_governance_policy",
    "move_label",
    "new_version",
    "parse_label_spec",
    "reject",
    "submit",
]
